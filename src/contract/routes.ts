import { z } from 'zod';
import { describedObject, portArgument as port } from './arguments.ts';
import { hostnameArgument } from '../hostname.ts';

/**
 * What tunnel_request_cname takes and answers, what tunnel_delete_cname, tunnel_list_domains and tunnel_scan_orphans
 * answer: the tools validate with these schemas, and the backend's request and result types are inferred from them.
 */

/** Per-route origin settings cloudflared accepts; anything else is refused. */
export const originRequestSchema = z
  .object({
    connectTimeout: z.string().regex(/^\d+(ms|s|m)$/, 'a duration such as 30s').optional().describe('how long cloudflared waits to connect to your service, e.g. "30s" or "500ms" (default 30s)'),
    noTLSVerify: z.boolean().optional().describe('true: accept a self-signed certificate from an https:// service (default false)'),
    httpHostHeader: z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, 'a host name').optional().describe('the Host header sent to your service instead of the public name, e.g. "localhost"'),
    originServerName: z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, 'a host name').optional().describe("the TLS server name to expect from an https:// service, e.g. \"app.internal\""),
    http2Origin: z.boolean().optional().describe('true: speak HTTP/2 to your service (default false)'),
  })
  .strict()
  .describe('optional per-route settings for how cloudflared talks to your service; leave out for the defaults');

export const cnameRequestSchema = z
  .object({
    subdomain: z.string().max(253, 'at most 253 characters').describe('e.g. "app" or "api.staging"'),
    domain: hostnameArgument.optional().describe('a zone of the account (tunnel_list_domains); default: the default zone'),
    targetPort: port.describe('a port allocated to you'),
    originRequest: originRequestSchema.optional(),
    expiresInSeconds: z
      .number()
      .int()
      .min(60, 'at least 60 seconds')
      .max(366 * 24 * 3600, 'at most a year')
      .optional()
      .describe('remove the route by itself after this many seconds (60 to 31622400), e.g. 3600 for a preview; default: never'),
    dryRun: z.boolean().optional().describe('true: answer the plan (target, reason, steps) and change nothing (default false)'),
    publishAhead: z
      .boolean()
      .optional()
      .describe(
        'true: publish even though nothing answers on the port yet, because the service starts later; the route carries a warning and you get ' +
          'route.service_answering when it first answers (or route.service_not_answering if it keeps not answering). Default false: refused with TARGET_NOT_ANSWERING',
      ),
  })
  .strict();

export type CnameRequest = z.output<typeof cnameRequestSchema>;

/** What tunnel_update_cname takes: the route, and what changes (its port, its origin settings, or both). */
export const cnameUpdateSchema = z
  .object({
    hostname: hostnameArgument.describe('the route to change, as tunnel_list_cnames lists it, e.g. "app.153.se"'),
    targetPort: port.optional().describe("another port allocated to the route's project, e.g. the green version's; default: the port it has"),
    originRequest: originRequestSchema
      .optional()
      .describe('the route\'s origin settings, replacing the ones it has ({} for the defaults); default: unchanged'),
    publishAhead: z
      .boolean()
      .optional()
      .describe('true: switch even though nothing answers on the new port yet (default false: refused with TARGET_NOT_ANSWERING, nothing changed)'),
  })
  .strict();

export type CnameUpdate = z.output<typeof cnameUpdateSchema>;

const targetView = describedObject(
  { targetPort: z.number().nullable(), target: z.string().nullable() },
  { targetPort: 'the port', target: 'where cloudflared sent the traffic, e.g. "http://localhost:3100"' },
);

export const cnameUpdateResultSchema = describedObject(
  {
    hostname: z.string(),
    url: z.string(),
    targetPort: z.number().nullable(),
    target: z.string(),
    reason: z.string().nullable(),
    previous: targetView,
    originRequest: z.record(z.unknown()).nullable(),
    commit: z.string().nullable(),
    warning: z.string().nullable(),
    updatedAt: z.string(),
  },
  {
    hostname: 'the route that changed',
    url: 'its public URL (its DNS record was left alone)',
    targetPort: 'the port it serves now',
    target: 'where cloudflared sends its traffic now',
    reason: 'why that target',
    previous: 'what it served before',
    originRequest: 'its origin settings now (null: the defaults)',
    commit: 'the git commit of config.yml with the new rule (null when the file did not change)',
    warning: 'null when the new target answered the check; else why it may not serve yet (publishAhead)',
    updatedAt: 'when it changed (ISO 8601)',
  },
);

export type CnameUpdateResult = z.infer<typeof cnameUpdateResultSchema>;

const timings = z
  .array(describedObject({ step: z.string(), ms: z.number() }, { step: 'the saga step, e.g. dns, ingress, tunnelReady', ms: 'how long it took, in milliseconds' }))
  .describe('each step of the request and its time, in order');

export const cnameResultSchema = describedObject(
  {
    url: z.string(),
    hostname: z.string(),
    zone: z.string(),
    target: z.string(),
    reason: z.string(),
    alternatives: z.array(z.string()),
    dryRun: z.boolean(),
    plan: z.array(z.string()),
    timings,
    dnsRecordId: z.string().nullable(),
    commit: z.string().nullable(),
    expiresAt: z.string().nullable(),
    warning: z.string().nullable(),
  },
  {
    url: 'the public URL, e.g. "https://app.153.se"',
    hostname: 'the public name',
    zone: 'the Cloudflare zone it is in',
    target: 'where cloudflared sends the traffic, e.g. "http://localhost:3100"',
    reason: 'why that target: where cloudflared runs and where your service listens',
    alternatives: 'other targets that were considered, each with why not',
    dryRun: 'true when nothing was changed (the plan only)',
    plan: 'the steps, in plain words',
    timings: 'each step and its time (empty for a dry run)',
    dnsRecordId: 'the id of the CNAME record in Cloudflare',
    commit: 'the git commit of config.yml that added the rule',
    expiresAt: 'when the route removes itself (ISO 8601), null for never',
    warning: 'null when your service answered the check; else why the route may not serve yet (published ahead of the service, or the check could not run)',
  },
);

export type CnameResult = z.infer<typeof cnameResultSchema>;

export const deleteResultSchema = describedObject(
  { hostname: z.string(), deleted: z.boolean(), dnsRecordDeleted: z.boolean(), timings },
  {
    hostname: 'the name that was removed',
    deleted: 'true: rule, record (if ours) and ledger entry are gone',
    dnsRecordDeleted: 'true when a DNS record was deleted (false for a record this manager did not create, which is left alone)',
    timings: 'each step of the removal and its time',
  },
);

export type DeleteResult = z.infer<typeof deleteResultSchema>;

export const domainsSchema = z.object({
  domains: z
    .array(
      describedObject(
        { zoneId: z.string(), name: z.string(), status: z.string(), plan: z.string().nullable(), isDefault: z.boolean() },
        {
          zoneId: "the zone's Cloudflare id",
          name: 'the domain, e.g. "153.se": pass it as `domain` to tunnel_request_cname',
          status: "Cloudflare's status of the zone, e.g. active or pending",
          plan: "the zone's Cloudflare plan, when known",
          isDefault: 'true for the zone used when a request names no domain',
        },
      ),
    )
    .describe('the zones routes can be published on'),
});

export type DomainView = z.infer<typeof domainsSchema>['domains'][number];

const orphanSchema = describedObject(
  {
    hostname: z.string(),
    project: z.string(),
    reason: z.enum(['project-removed', 'record-missing', 'port-unallocated']),
    detail: z.string(),
    fix: z.string(),
    since: z.string(),
  },
  {
    hostname: 'the orphaned route',
    project: 'its owner',
    reason: 'project-removed: its project left the configuration; record-missing: its DNS record no longer points at the tunnel; port-unallocated: its port is no longer allocated to its project',
    detail: 'what exactly was found',
    fix: 'what to do about it',
    since: 'since when it is orphaned (ISO 8601)',
  },
);

export const orphanScanSchema = describedObject(
  {
    scannedAt: z.string(),
    routes: z.number(),
    zonesChecked: z.array(z.string()),
    orphans: z.array(orphanSchema),
    newlyOrphaned: z.array(z.string()),
    resolved: z.array(z.string()),
    unledgered: z.array(
      describedObject(
        { hostname: z.string(), zone: z.string(), recordId: z.string(), owner: z.string(), adopted: z.boolean(), fix: z.string() },
        {
          hostname: 'the record name',
          zone: 'its zone',
          recordId: "the record's Cloudflare id",
          owner: 'the project its ownership marker names',
          adopted: 'true: taken into the ledger as an adopted route of its owner (listed, deletable, not served); false: its owner is not a configured project',
          fix: 'what to do about it',
        },
      ),
    ),
  },
  {
    scannedAt: 'when the scan ran (ISO 8601)',
    routes: 'routes looked at',
    zonesChecked: 'zones whose DNS records were read',
    orphans: 'every route that is orphaned now',
    newlyOrphaned: 'hostnames found orphaned by this scan (their owners were told)',
    resolved: 'hostnames that were orphaned and no longer are',
    unledgered: 'records marked as ours, pointing at our tunnel, that had no route in the ledger: adopted for their owner (or reported when the owner is not configured), never deleted',
  },
);

export type OrphanScanView = z.infer<typeof orphanScanSchema>;

/** The orphan scan's result as the orphans actor emits it: the answer of tunnel_scan_orphans with the time in milliseconds. */
export const orphanScanResultSchema = orphanScanSchema.omit({ scannedAt: true }).extend({ at: z.number() });
export type OrphanScanResult = z.infer<typeof orphanScanResultSchema>;
