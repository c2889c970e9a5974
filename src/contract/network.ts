import { z } from 'zod';
import { describedObject } from './arguments.ts';

/** What tunnel_check_connectivity, tunnel_recommend_config and tunnel_get_network_topology answer; the backend's types are inferred from these schemas. */

const recommendations = z.array(
  describedObject({ command: z.string(), explanation: z.string() }, { command: 'the exact command to run, e.g. "docker network connect …"', explanation: 'what it changes and why' }),
);
export const connectivitySchema = describedObject(
  {
    port: z.number(),
    target: z.string().nullable(),
    reason: z.string(),
    reachable: z.boolean(),
    check: z.string(),
    latencyMs: z.number().nullable(),
    recommendations,
  },
  {
    port: 'the port that was checked',
    target: 'the target cloudflared would use, e.g. "http://localhost:3100" (null when none can work)',
    reason: 'why that target, or why none',
    reachable: 'true when the target answered from where cloudflared runs',
    check: 'exactly what was tried (TCP connect, HTTP request) and from where',
    latencyMs: 'how long the answer took, in milliseconds (null when there was none)',
    recommendations: 'what to change so a route to this port works (empty when nothing needs to change)',
  },
);

export type ConnectivityView = z.infer<typeof connectivitySchema>;

export const topologySchema = describedObject(
  {
    available: z.boolean(),
    reason: z.string().nullable(),
    cloudflared: z.record(z.unknown()),
    networks: z.array(z.record(z.unknown())),
    containers: z.array(z.record(z.unknown())),
    mermaid: z.string(),
  },
  {
    available: 'false when Docker cannot be reached (host targets still work)',
    reason: 'why Docker is not available, when it is not',
    cloudflared: 'where cloudflared runs: on the host or in a container, and its networks',
    networks: 'the Docker networks with their containers',
    containers: 'the running containers with their networks, published ports and ports listened on',
    mermaid: 'the same as a Mermaid flowchart',
  },
);

export type TopologyView = z.infer<typeof topologySchema>;
