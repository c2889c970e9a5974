import { z } from 'zod';
import { defineTool } from '../tool-definition.ts';
import { describedObject, portArgument as port } from './arguments.ts';

const recommendations = z.array(
  describedObject({ command: z.string(), explanation: z.string() }, { command: 'the exact command to run, e.g. "docker network connect …"', explanation: 'what it changes and why' }),
);
const connectivity = describedObject(
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

export const checkConnectivity = defineTool({
  name: 'tunnel_check_connectivity',
  title: 'Check what cloudflared reaches',
  description:
    'For one of your ports: which target cloudflared would use (localhost:PORT or container-name:PORT) and why, and whether it really answers, ' +
    'tested from where cloudflared runs (TCP connect and an HTTP request). Says exactly which check was done.',
  input: z.object({ targetPort: port.describe('one of your allocated ports, e.g. 3100') }).strict(),
  output: connectivity,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  auditTarget: (args) => String(args.targetPort),
  handler: (args, { backend, principal }) => backend.checkConnectivity(principal, args.targetPort),
});

export const recommendConfig = defineTool({
  name: 'tunnel_recommend_config',
  title: 'How to make a port reachable',
  description:
    'What to change in your Docker setup so that a route to this port would work, as exact commands (docker network connect …, -p …), ' +
    'or confirmation that nothing needs to change.',
  input: z.object({ targetPort: port.describe('one of your allocated ports, e.g. 3100') }).strict(),
  output: connectivity,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  auditTarget: (args) => String(args.targetPort),
  handler: (args, { backend, principal }) => backend.recommendConfig(principal, args.targetPort),
});

export const getTopology = defineTool({
  name: 'tunnel_get_network_topology',
  title: 'Docker network topology',
  description: 'Where cloudflared runs, the Docker networks and containers with their ports, structured and as a Mermaid diagram.',
  input: z.object({}).strict(),
  output: describedObject(
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
  ),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { backend }) => backend.topology(),
});

export const NETWORK_TOOLS = [checkConnectivity, recommendConfig, getTopology];
