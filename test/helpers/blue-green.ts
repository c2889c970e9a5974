import type { Server } from 'node:http';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Config } from '../../src/app/config/config.ts';
import { call, portOf, projectPorts, startOriginInRange } from './service.ts';

/**
 * Blue-green as a project does it (issue 24): two origins of one project, `blue` and `green`, on free ports of the
 * upper half of its range (which port_allocate hands out last), both allocated to it, and a route published to blue.
 * The e2e test of tunnel_update_cname and the blue-green benchmark start from here.
 */
export interface BlueGreen {
  hostname: string;
  blue: number;
  green: number;
  /** Which origin wrote an answer's body (`hello from blue …`), or null for neither (an error page, a failure). */
  originOf(body: string): 'blue' | 'green' | null;
  /** Closes both origins (the route stays). */
  close(): Promise<void>;
}

export async function publishBlueGreen(env: { config: Config }, client: Client, { project, subdomain }: { project: string; subdomain: string }): Promise<BlueGreen> {
  const servers: Server[] = [];
  const close = async (): Promise<void> => void (await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))));
  try {
    for (const name of ['blue', 'green']) {
      const server = await startOriginInRange(...projectPorts(env.config, project, [0.5, 1]), name);
      servers.push(server);
      const allocated = await call(client, 'port_allocate', { port: portOf(server), purpose: `${name} of ${subdomain}` });
      if (allocated.isError) throw new Error(`port_allocate ${portOf(server)}: ${JSON.stringify(allocated.data)}`);
    }
    const [blue, green] = servers.map(portOf) as [number, number];
    const created = await call<{ hostname: string }>(client, 'tunnel_request_cname', { subdomain, targetPort: blue });
    if (created.isError) throw new Error(`tunnel_request_cname ${subdomain} → ${blue}: ${JSON.stringify(created.data)}`);
    const originOf = (body: string): 'blue' | 'green' | null => (/^hello from (blue|green) /.exec(body)?.[1] as 'blue' | 'green' | undefined) ?? null;
    return { hostname: created.data.hostname, blue, green, originOf, close };
  } catch (error) {
    await close();
    throw error;
  }
}
