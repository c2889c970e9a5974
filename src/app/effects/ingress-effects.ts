import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { provideIngressMachine } from '../../cloudflared/ingress-runtime.ts';
import { IngressService } from '../../cloudflared/ingress-service.ts';
import { TunnelManagerError } from '../../errors.ts';
import type { AuditRepository } from '../../store/audit-repository.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';
import type { Config } from '../config/config.ts';
import type { EventBus } from '../actors/event-bus.ts';
import { ask } from '../../actor-ask.ts';
import type { ChildOf, SupervisorChild } from '../actors/supervisor-children.ts';

/**
 * The ingress actor's effects: the config.yml it is the only writer of (rendered from the ledger, validated, written
 * atomically, committed to git, watched for hand edits), and the reload it asks the tunnel actor for.
 */
export interface IngressWiring {
  service: IngressService;
  /** The ingress machine with its effects, for the supervisor's `actors`. */
  machine: ReturnType<typeof provideIngressMachine>;
  /** Tells the ingress actor about hand edits of config.yml; returns the function that stops watching. */
  watchHandEdits(): () => void;
}

export interface IngressWiringOptions {
  config: Config;
  routes: RoutesRepository;
  bus: EventBus;
  audit: AuditRepository;
  /** A child of the root actor by id (the tunnel, the ingress actor itself). */
  childOf: ChildOf;
}

export async function openIngress(options: IngressWiringOptions): Promise<IngressWiring> {
  const { config, routes } = options;
  mkdirSync(dirname(config.cloudflared.configPath), { recursive: true });
  const service = await IngressService.open({
    configPath: config.cloudflared.configPath,
    gitBackup: config.ingress.gitBackup,
    driftPolicy: config.ingress.driftPolicy,
    tunnel: config.tunnel.id,
    ...(config.cloudflared.credentialsFile ? { credentialsFile: config.cloudflared.credentialsFile } : {}),
    reporter: {
      event: (event) => options.bus.publish(event.kind, event.project, event.data),
      audit: (entry) => options.audit.record({ ts: Date.now(), principal: 'system', ...entry }),
    },
    adoptEdit: (edit) => {
      routes.update(edit.hostname, { service: edit.service, originRequest: edit.originRequest ?? null, targetReason: 'adopted from a hand edit of config.yml' }, Date.now());
    },
  });
  // The file must exist before cloudflared first starts: write the current state now.
  await service.write(await service.render(routes.servedRules()), 'render on start');
  await service.markGood();
  return {
    service,
    machine: provideIngressMachine({
      service,
      readLedger: () => routes.servedRules(),
      // An adopted route is served by a hand-written rule we do not manage; when its owner deletes it, that rule goes too.
      readRetired: () => routes.retiredAdoptedHostnames(),
      reload: () => reloadThroughTunnel(options.childOf('tunnel')),
    }),
    watchHandEdits: () => service.watch(() => options.childOf('ingress').send({ type: 'CHANGE', change: { hostname: '*', action: 'file-edited', project: '*' } })),
  };
}

/** Asks the tunnel actor for a reload and waits for the answer to this very request (reloads coalesce). */
async function reloadThroughTunnel(tunnel: SupervisorChild<'tunnel'>): Promise<void> {
  const requestId = randomUUID();
  await ask(
    tunnel,
    { type: 'RELOAD', requestId },
    {
      emitted: (event) => {
        if (event.type === 'tunnel.reloaded' && event.requestIds.includes(requestId)) return { value: undefined };
        if (event.type !== 'tunnel.reload_failed' || !event.requestIds.includes(requestId)) return undefined;
        return {
          error: new TunnelManagerError({
            code: 'RELOAD_FAILED',
            message: `cloudflared did not take the new config: ${event.error}`,
            fix: event.keptRunning
              ? 'The previous cloudflared keeps serving its previous config. Check the cloudflared log and `tunnel-manager config history`.'
              : 'Check the cloudflared log and `tunnel-manager config history`; the tunnel restarts on the restored config.',
            details: { keptRunning: event.keptRunning },
          }),
        };
      },
    },
    // The tunnel machine answers every reload itself, within its own reload timeout.
    null,
  );
}
