import { fromPromise } from 'xstate';
import { zonesMachine, type RefreshOutput } from '../../../machines/zones.machine.ts';
import type { CloudflareProvider } from '../../cloudflare/cloudflare-provider.ts';
import type { ZoneDirectory } from '../../cloudflare/zones.ts';
import type { ManagedRuleOnDisk } from '../../cloudflared/ingress/ingress-render.ts';
import type { PortManager } from '../../ports/port-manager.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';
import type { Config } from '../config/config.ts';
import { recoverRoutes } from '../operations/recover.ts';
import { verifyRestoredRoutes } from './route-verification.ts';

/**
 * The zones actor's effect: refresh the account's zones and, on the first refresh, adopt the records pointing at the
 * tunnel. With a lost ledger, routes whose record carries our marker and whose managed rule is still in config.yml
 * (`rulesAtBoot`) come back as they were, their ports allocated to their projects again. Each refresh also checks the
 * rows a restore put back (route-verification.ts) before they are served.
 */
export function provideZonesEffects(options: {
  config: Config;
  zones: ZoneDirectory;
  provider: CloudflareProvider;
  routes: RoutesRepository;
  ports: PortManager;
  rulesAtBoot: ReadonlyMap<string, ManagedRuleOnDisk>;
  publish: (kind: string, project: string, data: Record<string, unknown>) => void;
}) {
  const projects = new Set(options.config.projects.map((project) => project.name));
  const operatorProject = options.config.projects.find((project) => project.role === 'ms')?.name ?? options.config.cloudflare.adoptOwner;
  return zonesMachine.provide({
    actors: {
      refreshZones: fromPromise<RefreshOutput, { adopt: boolean }>(async ({ input }) => {
        const refreshed = await options.zones.refresh();
        const adopted = input.adopt
          ? (
              await recoverRoutes({
                provider: options.provider,
                routes: options.routes,
                ports: options.ports,
                zones: options.zones.list(),
                adoptOwner: options.config.cloudflare.adoptOwner,
                managedRules: options.rulesAtBoot,
                projects,
              })
            ).adoption.adopted
          : [];
        // Rows a restore put back are served once checked against the records, the projects and the ports.
        const verified = await verifyRestoredRoutes({
          routes: options.routes,
          provider: options.provider,
          projects,
          allocations: () => options.ports.list(),
          operatorProject,
          publish: options.publish,
        });
        return {
          zones: refreshed.zones.length,
          added: refreshed.added,
          removed: refreshed.removed,
          adopted: adopted.map((route) => route.hostname),
          checked: [...verified.served, ...verified.refused.map((refusal) => refusal.hostname)],
        };
      }),
    },
  });
}
