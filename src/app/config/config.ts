import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssue } from './config-issues.ts';
import { hostPort, origin, positiveHours, positiveSeconds, projectName, projectSchema } from './config-values.ts';
import { TunnelManagerError } from '../../errors.ts';

/**
 * The one configuration file (YAML). Every key has a default that runs the sandbox,
 * so `tunnel-manager serve` works with no file at all.
 * Reference with every key: docs/configuration.md.
 */

/** The manager's metrics and health listener, by default (the Prometheus exporters' port range). */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';
/** Its default in the sandbox, where every port is a free one unless the configuration names its own. */
export const SANDBOX_METRICS_LISTEN = '127.0.0.1:0';

export const configSchema = z
  .object({
    dataDir: z.string().min(1, 'a directory path').default('./data'),
    cloudflare: z
      .object({
        accountId: z.string().regex(/^[0-9a-f]{32}$/, 'a Cloudflare account id (32 hex digits)').default('2d3af2bad092943b12b5e9fcde17b7a3'),
        /** Absent: the sandbox's emulator. Production: https://api.cloudflare.com/client/v4 */
        apiBaseUrl: z.string().url('an http(s) URL such as https://api.cloudflare.com/client/v4').optional(),
        /** Name under which the SecretsManager finds the API token. */
        apiTokenSecret: z.string().min(1).default('cloudflare_api_token'),
        /** Owner given to records found pointing at the tunnel on first start (adoption). */
        adoptOwner: projectName.default('meta-supervisor'),
        zoneRefreshSeconds: positiveSeconds.default(3600),
        /** Client-side budget, kept under Cloudflare's 1,200 requests per 5 minutes per token. */
        requestsPerFiveMinutes: z.number().int().min(1).max(1200).default(1000),
      })
      .strict()
      .default({}),
    tunnel: z
      .object({
        id: z
          .string()
          .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a tunnel UUID such as fe2ec8b5-790f-4973-ad07-e03a4e4dd45b')
          .default('fe2ec8b5-790f-4973-ad07-e03a4e4dd45b'),
        defaultZone: z
          .string()
          .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'a zone name such as 153.se')
          .default('153.se'),
        /** true: push the ingress through the API instead of a local config.yml (no restart). */
        remotelyManaged: z.boolean().default(false),
      })
      .strict()
      .default({}),
    cloudflared: z
      .object({
        driver: z.enum(['child', 'spawn', 'systemd', 'docker']).default('spawn'),
        /** The executable and the arguments before `tunnel`; absent in the sandbox, which runs the stand-in. */
        command: z.array(z.string().min(1)).min(1, 'a non-empty list such as ["/usr/local/bin/cloudflared"]').optional(),
        /** Default: <dataDir>/cloudflared/config.yml */
        configPath: z.string().min(1).optional(),
        credentialsFile: z.string().min(1).optional(),
        metricsAddress: hostPort.default('127.0.0.1:20241'),
        systemdUnit: z.string().min(1).default('cloudflared.service'),
        containerName: z.string().min(1).default('cloudflared'),
        /** cloudflared opens 4 HA connections; fewer ready ones make a probe `degraded`. */
        expectedConnections: z.number().int().min(1).max(16).default(4),
      })
      .strict()
      .default({}),
    ingress: z
      .object({
        /** What to do when a managed rule was edited by hand: keep the ledger's version, or adopt the edit. */
        driftPolicy: z.enum(['keep-ledger', 'adopt-edit']).default('keep-ledger'),
        /** Commit every version of config.yml to a git repository in its directory. */
        gitBackup: z.boolean().default(true),
      })
      .strict()
      .default({}),
    orphans: z
      .object({
        /** How often the orphan scan runs (it also runs at every start); a week by default. */
        scanIntervalHours: positiveHours.default(168),
        /**
         * Hours after a project leaves `projects` before its routes are removed (DNS record, rule, ledger row);
         * null keeps them until the meta-supervisor deletes them.
         */
        projectRemovedGraceHours: z.number().nonnegative('a number of hours, 0 or more, or null for never').nullable().default(24),
      })
      .strict()
      .default({}),
    reload: z
      .object({
        /** replica: start a second cloudflared, wait for /ready, then stop the old one; restart: stop then start. */
        strategy: z.enum(['replica', 'restart']).default('replica'),
        replicaReadyTimeoutSeconds: positiveSeconds.default(30),
        /** cloudflared's --grace-period for draining in-flight requests on SIGTERM. */
        drainGraceSeconds: positiveSeconds.default(30),
      })
      .strict()
      .default({}),
    docker: z
      .object({
        socketPath: z.string().min(1).default('/var/run/docker.sock'),
        /** The container that runs cloudflared, when it runs in one and cannot be found by image or command. */
        cloudflaredContainer: z.string().min(1).optional(),
        resyncSeconds: positiveSeconds.default(300),
        /**
         * The image of the throwaway container that checks a target from a containerised cloudflared's network
         * namespace; it must be present locally and carry busybox (sh, nc, wget, nslookup).
         */
        probeImage: z.string().min(1).default('busybox:latest'),
      })
      .strict()
      .default({}),
    limits: z
      .object({
        /** Tool calls each project may make per minute (all its sessions together); 0 for no limit. */
        toolCallsPerMinute: z.number().int().min(0, 'a whole number, 0 for no limit').default(300),
        /** Routes each project may hold (requested, label or adopted); 0 for no limit. */
        routesPerProject: z.number().int().min(0, 'a whole number, 0 for no limit').default(200),
        /** The part of the Cloudflare request budget one project's calls may use (the service's own work is not capped). */
        cloudflareSharePercent: z.number().min(1, 'a percentage from 1 to 100').max(100, 'a percentage from 1 to 100').default(50),
      })
      .strict()
      .default({}),
    labels: z
      .object({
        /** Routes declared by container labels (tunnel-manager.hostname, .port, .project). */
        enabled: z.boolean().default(true),
        /** How long a label route outlives its container, so a redeploy keeps it. */
        releaseGraceSeconds: z.number().nonnegative('a number of seconds, 0 or more').default(300),
        /** The projects whose containers may declare routes by label; absent: every project supervisor (never the meta-supervisor). */
        projects: z.array(projectName).optional(),
      })
      .strict()
      .default({}),
    publishAhead: z
      .object({
        /** How often a route published ahead of its service checks whether the service answers yet. */
        checkSeconds: positiveSeconds.default(30),
        /** After this long without an answer, the route's owner is told once (route.service_not_answering). */
        noticeAfterMinutes: z.number().positive('a number of minutes above 0').default(15),
      })
      .strict()
      .default({}),
    health: z
      .object({
        probeIntervalSeconds: positiveSeconds.default(30),
        probeTimeoutSeconds: positiveSeconds.default(5),
        failedProbesBeforeRestart: z.number().int().min(1, 'a whole number of at least 1').default(3),
        rawRetentionDays: positiveSeconds.default(7),
      })
      .strict()
      .default({}),
    restart: z
      .object({
        backoffSeconds: z
          .array(z.number().nonnegative())
          .min(1, 'a non-empty list of seconds such as [5, 15, 30, 60, 300]')
          .default([5, 15, 30, 60, 300]),
        resetAfterSeconds: positiveSeconds.default(600),
        stopGraceSeconds: positiveSeconds.default(10),
        startTimeoutSeconds: positiveSeconds.default(30),
      })
      .strict()
      .default({}),
    projects: z
      .array(projectSchema)
      .default([
        { name: 'meta-supervisor', role: 'ms', ports: '3000-3099' },
        { name: 'consilio', role: 'ps', ports: '3100-3199' },
        { name: 'openhorizon', role: 'ps', ports: '3200-3299' },
        { name: 'odin', role: 'ps', ports: '3300-3399' },
        { name: 'health-agent', role: 'ps', ports: '3400-3499' },
        { name: 'shared-services', role: 'ps', ports: '9000-9999' },
      ]),
    mcp: z
      .object({
        listen: hostPort.default('127.0.0.1:8787'),
        /**
         * Origins (`scheme://host[:port]`) of browser pages allowed to call. Requests without an `Origin` header
         * (agents, the CLI) are always served; this listener's own loopback origins are always allowed.
         */
        allowedOrigins: z.array(origin).default([]),
        /** Open sessions per project; a new one beyond this closes that project's least recently used session. */
        maxSessionsPerProject: z.number().int().min(1).max(1000).default(16),
        /** A session with no request for this long is closed (the client initializes a new one). */
        sessionIdleMinutes: z.number().int().min(1).max(7 * 24 * 60).default(30),
        /** At a stop, how long the calls running get to finish before each is answered SHUTTING_DOWN. */
        shutdownGraceSeconds: z.number().min(0, 'a number of seconds, 0 or more').max(120, 'at most 120 seconds').default(5),
      })
      .strict()
      .default({}),
    metrics: z
      .object({
        /**
         * Where /metrics, /healthz, /readyz and /cloudflared/metrics are served (no token; keep it on loopback or a
         * private address). Absent: DEFAULT_METRICS_LISTEN, or a free port in the sandbox (parseConfig); `off`
         * serves nothing. An address given here is used as given, in the sandbox too (a container's health check).
         */
        listen: z.union([hostPort, z.literal('off')]).optional(),
      })
      .strict()
      .default({}),
    backup: z
      .object({
        /** An online backup of the database this often (0: none); the first one this long after the start. */
        intervalHours: z.number().min(0).max(24 * 30).default(24),
        /** Scheduled backups kept; older ones are deleted. */
        keep: z.number().int().min(1).max(1000).default(7),
        /** Where they go; default <dataDir>/backups. */
        dir: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    retention: z
      .object({
        /** Audit rows older than this are deleted (daily, and at start). */
        auditDays: z.number().int().min(1).max(3650).default(90),
        /** Events older than this are deleted; a cursor older than that simply resumes from the oldest kept. */
        eventsDays: z.number().int().min(1).max(3650).default(90),
      })
      .strict()
      .default({}),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** auto: readable lines when stderr is a terminal, JSON lines otherwise (journald, files, pipes). */
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.projects.forEach((project, index) => {
      const first = seen.get(project.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['projects', index, 'name'],
          message: `a project name not used before (projects[${first}] is already named ${project.name})`,
        });
      }
      seen.set(project.name, index);
    });
    config.labels.projects?.forEach((name, index) => {
      const project = config.projects.find((candidate) => candidate.name === name);
      if (project?.role === 'ps') return;
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['labels', 'projects', index],
        message:
          project === undefined
            ? `the name of a project supervisor in projects (there is no project named ${name})`
            : `the name of a project supervisor (${name} is the meta-supervisor; labels never act for it)`,
      });
    });
    config.projects.forEach((a, i) => {
      config.projects.slice(i + 1).forEach((b, offset) => {
        if (a.ports.from <= b.ports.to && b.ports.from <= a.ports.to) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['projects', i + 1 + offset, 'ports'],
            message: `a port range that does not overlap projects[${i}] (${a.name}: ${a.ports.from}-${a.ports.to})`,
          });
        }
      });
    });
  });

type ParsedConfig = z.output<typeof configSchema>;

/** The projects whose containers may declare routes by label: `labels.projects`, else every project supervisor. */
export function labelProjectsOf(config: Pick<ParsedConfig, 'labels' | 'projects'>): Set<string> {
  const supervisors = config.projects.filter((project) => project.role === 'ps').map((project) => project.name);
  return new Set(config.labels.projects ?? supervisors);
}
export type ProjectConfig = ParsedConfig['projects'][number];

/** The validated configuration, with derived paths resolved to absolute ones. */
export type Config = ParsedConfig & {
  /** Where the file came from, or null for embedded defaults. */
  source: string | null;
  databasePath: string;
  cloudflared: ParsedConfig['cloudflared'] & { configPath: string };
  metrics: ParsedConfig['metrics'] & { listen: string };
};

/**
 * Validates a parsed YAML value. Every problem names the key, the value found and the form expected;
 * all problems are reported at once.
 */
export function parseConfig(raw: unknown, source: string | null = null): Config {
  const input = raw === null || raw === undefined ? {} : raw;
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => describeIssue(issue, input));
    const where = source ?? 'the configuration';
    throw new TunnelManagerError({
      code: 'CONFIG_INVALID',
      message:
        `${where} is invalid:\n` +
        problems.map((p) => `  - ${p.key}: found ${JSON.stringify(p.found) ?? 'nothing'}, expected ${p.expected}`).join('\n'),
      fix: `Correct the key${problems.length > 1 ? 's' : ''} listed above in ${where}; docs/configuration.md lists every key with its default.`,
      details: { source, problems },
    });
  }
  const parsed = result.data;
  const dataDir = resolve(parsed.dataDir);
  return {
    ...parsed,
    dataDir,
    source,
    databasePath: resolve(dataDir, 'tunnel-manager.db'),
    cloudflared: {
      ...parsed.cloudflared,
      configPath: resolve(parsed.cloudflared.configPath ?? resolve(dataDir, 'cloudflared', 'config.yml')),
    },
    metrics: { ...parsed.metrics, listen: parsed.metrics.listen ?? (parsed.cloudflare.apiBaseUrl ? DEFAULT_METRICS_LISTEN : SANDBOX_METRICS_LISTEN) },
  };
}

/**
 * Loads the configuration: `--config` path, else `$TUNNEL_MANAGER_CONFIG`, else embedded defaults. The data directory:
 * `--data-dir`, else `$TUNNEL_MANAGER_DATA_DIR` (an image sets it, so that every command run in its container finds
 * the service's database), else the file's `dataDir`, else ./data.
 * A path that was named but does not exist is an error, never a silent fallback.
 */
export function loadConfig(options: { path?: string; env?: NodeJS.ProcessEnv; dataDir?: string } = {}): Config {
  const env = options.env ?? process.env;
  const path = options.path ?? env.TUNNEL_MANAGER_CONFIG;
  const dataDir = options.dataDir ?? (env.TUNNEL_MANAGER_DATA_DIR || undefined);
  // It replaces the file's dataDir before anything is derived from it (database, config.yml, git, secrets).
  const withDataDir = (raw: unknown): unknown =>
    dataDir === undefined ? raw : { ...(raw !== null && typeof raw === 'object' ? raw : {}), dataDir };
  if (path === undefined || path === '') return parseConfig(withDataDir({}), null);
  const absolute = resolve(path);
  if (!existsSync(absolute)) {
    throw new TunnelManagerError({
      code: 'CONFIG_NOT_FOUND',
      message: `The configuration file ${absolute} does not exist.`,
      fix: 'Create it (docs/configuration.md has an example), point --config or TUNNEL_MANAGER_CONFIG at the right file, or leave both unset to run on the embedded defaults.',
      details: { path: absolute },
    });
  }
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(absolute, 'utf8'));
  } catch (error) {
    throw new TunnelManagerError({
      code: 'CONFIG_INVALID',
      message: `${absolute} is not valid YAML: ${error instanceof Error ? error.message : String(error)}`,
      fix: 'Fix the YAML syntax at the line and column given above.',
      details: { path: absolute },
      cause: error,
    });
  }
  return parseConfig(withDataDir(raw), absolute);
}
