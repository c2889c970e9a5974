import { defineTool } from '../../tool-definition.ts';
import { cnameRequestSchema, cnameResultSchema } from '../../../contract/routes.ts';

export const requestCname = defineTool({
  name: 'tunnel_request_cname',
  title: 'Publish a service',
  description:
    'Publishes https://<subdomain>.<domain> for one of your allocated ports: creates the DNS CNAME, adds the ingress rule with the target that works for your ' +
    'Docker setup, reloads the tunnel and records you as owner. Allocate the port first (port_allocate). dryRun: true returns the plan and changes nothing. ' +
    'The service must answer on the port first (checked from where cloudflared runs; else TARGET_NOT_ANSWERING, or publishAhead: true). ' +
    'On failure everything done so far is undone and the error says what to change.',
  input: cnameRequestSchema,
  output: cnameResultSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  access: 'any',
  // The port the route will target: the policy checks it is allocated to the project the route is for.
  resource: (args) => ({ kind: 'port', port: args.targetPort, use: 'target' }),
  auditTarget: (args) => `${args.subdomain}${args.domain ? `.${args.domain}` : ''}`,
  handler: (args, { backend, actsFor, progress, signal }) => backend.requestCname(actsFor, args, { ...(progress ? { progress } : {}), ...(signal ? { signal } : {}) }),
});
