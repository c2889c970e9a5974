import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { topologySchema } from '../../../contract/network.ts';

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
