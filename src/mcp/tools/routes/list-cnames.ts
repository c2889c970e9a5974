import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { describedObject } from '../../../contract/arguments.ts';
import { routeSchema, routeView } from '../../../contract/route-view.ts';

export const listCnames = defineTool({
  name: 'tunnel_list_cnames',
  title: 'List routes',
  description:
    'Your routes in hostname order, a page at a time (a project supervisor sees its own; the meta-supervisor sees all and may filter by project). ' +
    'Pass the answer\'s `nextCursor` as `cursor` for the next page; it is null on the last one.',
  input: z
    .object({
      project: z.string().max(63).optional().describe('meta-supervisor only: filter by project'),
      limit: z.number().int().min(1).max(1000).default(100).describe('routes per page (default 100, at most 1000)'),
      cursor: z.string().max(253).optional().describe('the nextCursor of the previous page'),
    })
    .strict(),
  output: describedObject(
    { routes: z.array(routeSchema), count: z.number(), total: z.number(), nextCursor: z.string().nullable() },
    {
      routes: 'this page of routes, in hostname order',
      count: 'routes on this page',
      total: 'routes in all pages',
      nextCursor: 'pass as `cursor` for the next page; null on the last page',
    },
  ),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  resource: (args) => ({
    kind: 'project',
    project: args.project,
    mode: 'read',
    refusal: { doing: 'list the routes of', fix: 'Leave `project` out to list your own routes.' },
  }),
  handler: (args, { backend, project }) => {
    const page = backend.pageRoutes({ project, after: args.cursor ?? '', limit: args.limit });
    const routes = page.routes.map(routeView);
    const last = routes.at(-1);
    const more = last !== undefined && routes.length === args.limit && backend.pageRoutes({ project, after: last.hostname, limit: 1 }).routes.length > 0;
    return { routes, count: routes.length, total: page.total, nextCursor: more ? last.hostname : null };
  },
});
