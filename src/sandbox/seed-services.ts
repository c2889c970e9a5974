import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { FIXTURE_PREEXISTING_TUNNEL_HOSTNAMES } from './cloudflare-emulator/fixture.ts';
import { isObjectLike } from '../json-guards.ts';

/**
 * The sandbox as the VM is today, before the manager takes over: the Cloudflare emulator already has the four CNAMEs
 * that predate Tunnel Manager (chat, code, consilio and hejsan on 153.se), and this module gives them what they have
 * on the VM: a hand-written config.yml with their four ingress rules, and a small HTTP service behind each, so the
 * sandbox's edge answers 200 for them before, during and after the manager adopts them ("all existing CNAMEs
 * continue working").
 *
 * The services listen on free loopback ports chosen once and kept in `<dataDir>/sandbox/seed-services.json`, so the
 * rules written once keep pointing at them across restarts. config.yml is written only when there is none: a file
 * already there (an earlier sandbox's, or one edited by hand) is never replaced, and a data directory whose config.yml
 * predates this seed gets no services.
 */

export interface SeedService {
  hostname: string;
  port: number;
}

export interface SeedServices {
  services: SeedService[];
  close(): Promise<void>;
}

export interface SeedOptions {
  /** Where the chosen ports are kept (`<dataDir>/sandbox`). */
  stateDir: string;
  /** cloudflared's config.yml, written by hand as on the VM when it does not exist yet. */
  configPath: string;
  tunnelId: string;
  logger?: Logger;
}

const STATE_FILE = 'seed-services.json';

/** A kept entry: `{ hostname, port }` with a whole-number port. */
function isKeptEntry(entry: unknown): entry is SeedService {
  return isObjectLike(entry) && typeof entry.hostname === 'string' && Number.isInteger(entry.port);
}

function keptPorts(file: string): Map<string, number> {
  try {
    const kept: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!Array.isArray(kept)) return new Map();
    return new Map(kept.filter(isKeptEntry).map((entry) => [entry.hostname, entry.port]));
  } catch {
    return new Map();
  }
}

/** A service that answers 200 for every path, naming the hostname it stands for. */
function serviceFor(hostname: string): Server {
  return createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    response.end(`${hostname}: the service that was behind this name before tunnel-manager (sandbox seed); you asked for ${request.url ?? '/'}\n`);
  });
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error(`The seed service listens on ${String(address)}, not on a TCP port.`));
      else resolve(address.port);
    });
  });
}

/** config.yml as a person wrote it on the VM before Tunnel Manager: the four rules, then the catch-all. */
export function handWrittenConfig(tunnelId: string, services: readonly SeedService[]): string {
  return [
    '# cloudflared on vm-153, written by hand before tunnel-manager took over.',
    '# (sandbox seed: the routes that predate tunnel-manager, each to a small service the sandbox runs)',
    `tunnel: ${tunnelId}`,
    '',
    'ingress:',
    ...services.flatMap(({ hostname, port }) => [`  - hostname: ${hostname}`, `    service: http://localhost:${port}`]),
    '  - service: http_status:404',
    '',
  ].join('\n');
}

export async function startSeedServices(options: SeedOptions): Promise<SeedServices | null> {
  const stateFile = join(options.stateDir, STATE_FILE);
  const seededBefore = existsSync(stateFile);
  // A config.yml this seed did not write is left alone, and nothing is started for it.
  if (!seededBefore && existsSync(options.configPath)) return null;
  const kept = keptPorts(stateFile);
  const servers: Server[] = [];
  const services: SeedService[] = [];
  for (const hostname of FIXTURE_PREEXISTING_TUNNEL_HOSTNAMES) {
    const server = serviceFor(hostname);
    const wanted = kept.get(hostname) ?? 0;
    try {
      services.push({ hostname, port: await listen(server, wanted) });
      servers.push(server);
    } catch (error) {
      // Its rule keeps pointing at the kept port: the name answers 502 until that port is free again.
      options.logger?.warn({ hostname, port: wanted, err: error }, 'sandbox seed: the service of a pre-existing route could not listen on its port');
    }
  }
  if (!seededBefore) {
    mkdirSync(options.stateDir, { recursive: true });
    writeFileSync(stateFile, `${JSON.stringify(services, null, 2)}\n`);
  }
  if (!existsSync(options.configPath)) {
    mkdirSync(dirname(options.configPath), { recursive: true });
    writeFileSync(options.configPath, handWrittenConfig(options.tunnelId, services));
    options.logger?.info({ services, configPath: options.configPath }, 'sandbox seed: config.yml written by hand as on the VM, with the routes that predate tunnel-manager');
  }
  return {
    services,
    async close() {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => resolve());
            }),
        ),
      );
    },
  };
}
