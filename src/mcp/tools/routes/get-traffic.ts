import { defineTool } from '../../tool-definition.ts';
import { trafficRequestSchema, trafficResultSchema } from '../../../contract/traffic.ts';

export const getTraffic = defineTool({
  name: 'tunnel_get_traffic',
  title: 'Traffic per hostname',
  description:
    'How your hostnames are doing, from Cloudflare\'s analytics: requests, bytes sent, counts per status class, the 5xx share, the top statuses and an ' +
    'hourly series over the last 1h, 24h (default) or 7d. One hostname, or all of yours; the meta-supervisor reads any route, or one project\'s with ' +
    '`project`. Answers are kept a minute per hostname (asOf says when Cloudflare was read). Without the API token\'s Analytics Read permission the ' +
    'answer is available: false with the reason and the fix.',
  input: trafficRequestSchema,
  output: trafficResultSchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: true },
  access: 'any',
  resource: (args) =>
    args.hostname === undefined
      ? { kind: 'project', project: args.project, mode: 'read', refusal: { doing: 'read the traffic of', fix: 'Leave `project` out to read the traffic of your own routes.' } }
      : { kind: 'route', hostname: args.hostname },
  auditTarget: (args) => args.hostname ?? null,
  handler: (args, { backend, project }) => backend.traffic(args, project),
});
