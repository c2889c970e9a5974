import type { IncomingMessage, ServerResponse } from 'node:http';
import { failureEnvelope, successEnvelope } from './api-envelope.ts';
import type { FaultBoard } from './faults.ts';
import { bearer, readBody, send } from './http-exchange.ts';
import type { RequestLog } from './request-log.ts';
import type { StateStore } from './state-store.ts';
import { isObjectLike } from '../../json-guards.ts';

/** `GET /__admin/state`, `GET|POST /__admin/faults`, `POST /__admin/reset`, behind the admin token. */

export interface AdminContext {
  adminToken: string;
  store: StateStore;
  faults: FaultBoard;
  log: RequestLog;
  /** Back to the seed, faults cleared, log emptied. */
  reset(): void;
}

/** POST /__admin/faults: `{ faults: [...], mode?: 'append' }`; a bad fault is 1004 naming it. */
function postFaults(context: AdminContext, response: ServerResponse, body: unknown): void {
  const input = isObjectLike(body) ? body : {};
  const specs: unknown[] = Array.isArray(input.faults) ? input.faults : [];
  try {
    if (input.mode === 'append') context.faults.add(specs);
    else context.faults.set(specs);
  } catch (error) {
    send(response, 400, failureEnvelope([{ code: 1004, message: error instanceof Error ? error.message : String(error) }]));
    return;
  }
  send(response, 200, successEnvelope(context.faults.list()));
}

export async function handleAdmin(context: AdminContext, request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
  if (bearer(request) !== context.adminToken) {
    send(response, 401, failureEnvelope([{ code: 10000, message: 'Authentication error (admin token required)' }]));
    return;
  }
  const body = request.method === 'POST' ? await readBody(request) : undefined;
  const route = `${request.method} ${path}`;
  if (route === 'GET /__admin/state') {
    send(response, 200, successEnvelope({ state: context.store.snapshot(), faults: context.faults.list(), requests: context.log.entries() }));
  } else if (route === 'GET /__admin/faults') {
    send(response, 200, successEnvelope(context.faults.list()));
  } else if (route === 'POST /__admin/faults') {
    postFaults(context, response, body);
  } else if (route === 'POST /__admin/reset') {
    context.reset();
    send(response, 200, successEnvelope({ reset: true }));
  } else {
    send(response, 404, failureEnvelope([{ code: 7000, message: `No admin route for ${request.method} ${path}` }]));
  }
}
