import { z } from 'zod';
import { describedObject } from './arguments.ts';
import { hostnameArgument } from '../hostname.ts';

/** What tunnel_get_traffic takes and answers; the backend's types are inferred from these schemas. */

export const TRAFFIC_WINDOWS = ['1h', '24h', '7d'] as const;
export type TrafficWindow = (typeof TRAFFIC_WINDOWS)[number];
export const WINDOW_SECONDS: Record<TrafficWindow, number> = { '1h': 3_600, '24h': 86_400, '7d': 604_800 };

export const trafficRequestSchema = z
  .object({
    hostname: hostnameArgument.optional().describe('one of your routes, e.g. "app.153.se"; default: every route you can read'),
    window: z.enum(TRAFFIC_WINDOWS).default('24h').describe('how far back from now: "1h", "24h" or "7d" (default "24h")'),
    project: z.string().max(63).optional().describe("meta-supervisor only: one project's routes (default: every project's)"),
  })
  .strict();

export type TrafficRequest = z.output<typeof trafficRequestSchema>;

const statusClassesSchema = describedObject(
  { '2xx': z.number(), '3xx': z.number(), '4xx': z.number(), '5xx': z.number() },
  { '2xx': 'requests answered 2xx', '3xx': 'requests answered 3xx', '4xx': 'requests answered 4xx (the visitor\'s mistake)', '5xx': 'requests answered 5xx (the service, or the tunnel, failed)' },
);

const hourSchema = describedObject(
  { hour: z.string(), requests: z.number(), bytes: z.number(), errors: z.number() },
  { hour: "the hour's start (ISO 8601, UTC)", requests: 'requests in that hour', bytes: 'bytes sent to visitors in that hour', errors: 'requests answered 5xx in that hour' },
);

export const hostTrafficSchema = describedObject(
  {
    hostname: z.string(),
    project: z.string(),
    available: z.boolean(),
    reason: z.string().nullable(),
    requests: z.number(),
    bytes: z.number(),
    byStatusClass: statusClassesSchema,
    errorShare: z.number().nullable(),
    topStatusCodes: z.array(describedObject({ status: z.number(), requests: z.number() }, { status: 'an HTTP status', requests: 'requests answered with it' })),
    hourly: z.array(hourSchema),
    asOf: z.string().nullable(),
  },
  {
    hostname: 'the route',
    project: 'its project',
    available: 'false: Cloudflare could not be read for it (see reason); the counts are then 0',
    reason: 'why the traffic could not be read (null when it could)',
    requests: 'requests Cloudflare answered for this hostname in the window (sampled by Cloudflare on busy zones: an estimate)',
    bytes: 'bytes Cloudflare sent to visitors for it, headers included',
    byStatusClass: 'requests per status class',
    errorShare: 'share of requests answered 5xx, 0 to 1 (null with no request)',
    topStatusCodes: 'the most frequent statuses, most first (at most 5)',
    hourly: 'one entry per hour of the window, oldest first, hours without traffic included',
    asOf: 'when Cloudflare was read for this answer (ISO 8601): answers are kept for a minute, so a call within it spends nothing',
  },
);

export const trafficResultSchema = describedObject(
  {
    window: z.enum(TRAFFIC_WINDOWS),
    from: z.string(),
    to: z.string(),
    available: z.boolean(),
    reason: z.string().nullable(),
    fix: z.string().nullable(),
    hostnames: z.array(hostTrafficSchema),
    notes: z.array(z.string()),
    source: z.literal('cloudflare-graphql-analytics'),
  },
  {
    window: 'the window asked for',
    from: "the window's start (ISO 8601; later than asked when the zone's plan keeps less history, see notes)",
    to: "the window's end: now",
    available: 'false when the traffic of at least one hostname could not be read (reason and fix say why); never an internal error',
    reason: 'why not, when available is false',
    fix: 'what makes it available, when it is not',
    hostnames: 'one entry per route, in hostname order',
    notes: 'what to know about these figures: a window cut to the plan\'s history, a chunk Cloudflare refused, a page cut at its size',
    source: "Cloudflare's GraphQL Analytics API, dataset httpRequestsAdaptiveGroups",
  },
);

export type TrafficResult = z.input<typeof trafficResultSchema>;
export type HostTraffic = z.input<typeof hostTrafficSchema>;
