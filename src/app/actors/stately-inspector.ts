import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { TunnelManagerError } from '../../errors.ts';
import { redact } from '../../redact.ts';

export interface StatelyInspector {
  inspect: (event: InspectionEvent) => void;
  stop(): void;
}

/**
 * Off by default. With `TM_INSPECT=ws://host:port` the live actors (supervisor, tunnel, topology, ingress, sagas)
 * are sent to a Stately inspector listening there (`createInspectorServer()` of `@statelyai/inspect/server` on the
 * operator's machine, reached through an SSH tunnel), so the operator watches states and events as they happen.
 * The library is loaded only then. Contexts and events are redacted like the logs before they leave; still, point it
 * at a loopback or tunnelled address only.
 */
/** Refuses a TM_INSPECT value that is not a WebSocket URL (checked before anything starts). */
export function assertInspectorUrl(url: string): void {
  if (!/^wss?:\/\/[^\s/]+/.test(url)) {
    throw new TunnelManagerError({
      code: 'INPUT_INVALID',
      message: `TM_INSPECT must be the ws:// (or wss://) address of a Stately inspector, not ${JSON.stringify(url)}.`,
      fix: 'Set TM_INSPECT=ws://127.0.0.1:8080 (where createInspectorServer() listens), or unset it.',
      details: { variable: 'TM_INSPECT' },
    });
  }
}

/** The inspection event with its snapshot's context and its event redacted (the rest is left as XState made it). */
function redactedInspection(event: InspectionEvent): InspectionEvent {
  if (event.type === '@xstate.snapshot') {
    const { snapshot } = event;
    // A machine's snapshot carries a context; other actors' snapshots (promises, callbacks) have none to redact.
    if (!('context' in snapshot)) return { ...event, event: redact(event.event) };
    const redacted = { ...snapshot, context: redact(snapshot.context) };
    return { ...event, event: redact(event.event), snapshot: redacted };
  }
  if (event.type === '@xstate.event') return { ...event, event: redact(event.event) };
  return event;
}

export async function startStatelyInspector(url: string, logger: Logger): Promise<StatelyInspector> {
  assertInspectorUrl(url);
  const { createWebSocketInspector } = await import('@statelyai/inspect');
  const inspector = createWebSocketInspector({ url });
  logger.warn({ url }, 'TM_INSPECT is set: every actor event and context is sent to the Stately inspector at this address');
  return {
    // What leaves the process is redacted like the logs: contexts and events with anything token-like blanked.
    inspect: (event) => inspector.inspect.next?.(redactedInspection(event)),
    stop: () => inspector.adapter.stop(),
  };
}
