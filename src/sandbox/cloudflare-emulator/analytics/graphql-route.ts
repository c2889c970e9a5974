import type { RouteHandler } from '../routes/route-context.ts';
import type { executeAnalytics } from './analytics-graphql.ts';

/**
 * `POST /client/v4/graphql`: Cloudflare's GraphQL Analytics API. Any valid token may ask (Analytics Read decides, per
 * zone, whether a dataset answers); the answer is GraphQL's own JSON, HTTP 200 with or without errors. The graphql
 * library is loaded on the first query, so a sandbox that never asks for analytics does not hold it in memory.
 */

let engine: Promise<{ executeAnalytics: typeof executeAnalytics }> | undefined;

export const graphqlAnalytics: RouteHandler = {
  scope: 'self',
  async handle({ body, store, scopes, analytics }) {
    engine ??= import('./analytics-graphql.ts');
    const { executeAnalytics: execute } = await engine;
    return { raw: await execute(body, { state: store.state, source: analytics, mayRead: scopes.has('analytics:read') }) };
  },
};
