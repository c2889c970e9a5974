import { z } from 'zod';
import { defineTool } from '../tool-definition.ts';
import { portArgument as port } from '../../contract/arguments.ts';
import { connectivitySchema, topologySchema } from '../../contract/network.ts';

/** The two tools over one port's analysis: the same argument, answer and scope, a different question. */
function portAnalysisTool(spec: { name: string; title: string; description: string; ask: 'checkConnectivity' | 'recommendConfig' }) {
  return defineTool({
    name: spec.name,
    title: spec.title,
    description: spec.description,
    input: z.object({ targetPort: port.describe('one of your allocated ports, e.g. 3100') }).strict(),
    output: connectivitySchema,
    annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    access: 'any',
    resource: (args) => ({ kind: 'port', port: args.targetPort }),
    auditTarget: (args) => String(args.targetPort),
    handler: (args, { backend, principal }) => backend[spec.ask](principal, args.targetPort),
  });
}

export const checkConnectivity = portAnalysisTool({
  name: 'tunnel_check_connectivity',
  title: 'Check what cloudflared reaches',
  description:
    'For one of your ports: which target cloudflared would use (localhost:PORT or container-name:PORT) and why, and whether it really answers, ' +
    'tested from where cloudflared runs (TCP connect and an HTTP request). Says exactly which check was done.',
  ask: 'checkConnectivity',
});

export const recommendConfig = portAnalysisTool({
  name: 'tunnel_recommend_config',
  title: 'How to make a port reachable',
  description:
    'What to change in your Docker setup so that a route to this port would work, as exact commands (docker network connect …, -p …), ' +
    'or confirmation that nothing needs to change.',
  ask: 'recommendConfig',
});

export const getTopology = defineTool({
  name: 'tunnel_get_network_topology',
  title: 'Docker network topology',
  description: 'Where cloudflared runs, the Docker networks and containers with their ports, structured and as a Mermaid diagram.',
  input: z.object({}).strict(),
  output: topologySchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { backend }) => backend.topology(),
});

export const NETWORK_TOOLS = [checkConnectivity, recommendConfig, getTopology];
