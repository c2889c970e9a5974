import { fromPromise } from 'xstate';
import { zonesMachine, type RefreshOutput } from '../../machines/zones.machine.ts';
import type { CloudflareProvider } from '../cloudflare/cloudflare-provider.ts';
import type { ZoneDirectory } from '../cloudflare/zones.ts';
import type { ManagedRuleOnDisk } from '../cloudflared/ingress-render.ts';
import type { PortManager } from '../ports/port-manager.ts';
import type { RoutesRepository } from '../store/routes-repository.ts';
import type { Config } from './config.ts';
import { recoverRoutes } from './recover.ts';

/**
 * The zones actor's effect: refresh the account's zones and, on the first refresh, adopt the records pointing at the
 * tunnel. With a lost ledger, routes whose record carries our marker and whose managed rule is still in config.yml
 * (`rulesAtBoot`) come back as they were, their ports allocated to their projects again.
 */
export function provideZonesEffects(options: {
  config: Config;
  zones: ZoneDirectory;
  provider: CloudflareProvider;
  routes: RoutesRepository;
  ports: PortManager;
  rulesAtBoot: ReadonlyMap<string, ManagedRuleOnDisk>;
}) {
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
              })
            ).adoption.adopted
          : [];
        return { zones: refreshed.zones.length, added: refreshed.added, removed: refreshed.removed, adopted: adopted.map((route) => route.hostname) };
      }),
    },
  });
}
