import { defineTool } from '../../tool-definition.ts';
import { cnameUpdateResultSchema, cnameUpdateSchema } from '../../../contract/routes.ts';

export const updateCname = defineTool({
  name: 'tunnel_update_cname',
  title: 'Move a published service',
  description:
    'Moves a route you own to another of your allocated ports (e.g. blue → green) and/or replaces its originRequest settings, in place: the DNS record is left ' +
    'alone and the old target keeps serving until the new rule is live, so no request fails during the switch. The new port must answer first (else ' +
    'TARGET_NOT_ANSWERING, or publishAhead: true). If the reload fails, the old target is put back and the error says so. The meta-supervisor may move any route.',
  input: cnameUpdateSchema,
  output: cnameUpdateResultSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
  access: 'any',
  // The route (its owner, or the meta-supervisor) and the port it moves to (allocated to the route's owner).
  resource: (args) => ({ kind: 'route', hostname: args.hostname, ...(args.targetPort === undefined ? {} : { targetPort: args.targetPort }) }),
  auditTarget: (args) => args.hostname,
  handler: (args, { backend, progress }) => backend.updateCname(args, progress ? { progress } : {}),
});
