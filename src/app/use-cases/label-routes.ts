import type { Logger } from 'pino';
import { PROJECT_LABEL } from '../../docker/service-location.ts';
import type { DockerContainer, Topology } from '../../topology-model.ts';
import { TunnelManagerError, toErrorShape, type ErrorShape } from '../../errors.ts';
import { toHostname, type Hostname } from '../../hostname.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';
import type { ManagerBackend } from './backend.ts';
import type { EventBus } from '../actors/event-bus.ts';
import { startRounds } from '../schedules/rounds.ts';

/**
 * Routes declared by Docker labels, the convention of Traefik and caddy-docker-proxy:
 *
 *   docker run -l tunnel-manager.hostname=app.153.se -l tunnel-manager.port=3100 -l tunnel-manager.project=consilio …
 *
 * The trust model: whoever can start a container on this VM is root here (Docker access is root), so a label is no
 * identity; it is a convenience for a container of the project it names. A label route therefore names its project
 * explicitly (`tunnel-manager.project`, never guessed from the port), that project must be a project supervisor
 * allowed to use labels (`labels.projects`, all of them by default; never the meta-supervisor), and the port must be
 * allocated to it, exactly as for the tool. A running container with `tunnel-manager.hostname` then gets its route
 * through `tunnel_request_cname` itself (same validation, same saga, same ledger, the project's quota). The service may
 * still be starting, so the route is published ahead of it (the owner hears when it answers). A label that cannot be
 * honoured is told as `route.label_refused` with the fix to the project it names (when that is a project) and to the
 * meta-supervisor, once per state of the container: a change to the container (a network connected, a port
 * published) tries again. A route stays while its container exists (stopped too); once the container is gone for
 * `graceMs` (a redeploy comes back sooner) the route is released.
 */
export const HOSTNAME_LABEL = 'tunnel-manager.hostname';
export const PORT_LABEL = 'tunnel-manager.port';

export interface DeclaredRoute {
  container: string;
  running: boolean;
  hostname: string;
  port: number | null;
  project: string | null;
  /** Changes whenever what decides the answer changes: state, networks, published ports, labels. */
  fingerprint: string;
}

/** The routes the containers of a topology declare by label. */
export function declaredRoutes(topology: Topology): DeclaredRoute[] {
  return topology.containers.flatMap((container) => {
    const hostname = container.labels[HOSTNAME_LABEL]?.trim().toLowerCase();
    if (!hostname) return [];
    return [{
      container: container.name,
      running: container.state === 'running',
      hostname,
      port: portOf(container),
      project: container.labels[PROJECT_LABEL]?.trim() || null,
      fingerprint: JSON.stringify([container.state, container.networks.map((n) => n.networkName).sort(), container.ports, container.labels]),
    }];
  });
}

/** `tunnel-manager.port`, else the one TCP host port the container publishes; null when neither says. */
function portOf(container: DockerContainer): number | null {
  const label = container.labels[PORT_LABEL];
  if (label !== undefined) return /^\d{1,5}$/.test(label.trim()) ? Number(label.trim()) : Number.NaN;
  const published = [...new Set(container.ports.flatMap((p) => (p.protocol === 'tcp' && p.hostPort !== null ? [p.hostPort] : [])))];
  const [only] = published;
  return published.length === 1 && only !== undefined ? only : null;
}

export interface LabelRoutesOptions {
  topology: () => Topology;
  backend: Pick<ManagerBackend, 'requestCname' | 'deleteCname' | 'listDomains'>;
  routes: RoutesRepository;
  bus: EventBus;
  logger: Logger;
  /** How long a route outlives its container (a redeploy within it keeps the route). */
  graceMs: number;
  /** How often the grace periods are looked at when nothing changes in Docker. */
  intervalMs: number;
  /** The meta-supervisor: told of every refused label (and the only one told when the label names no project). */
  operatorProject: string;
  /**
   * The authorization policy's decision on a label route (src/mcp/authorization.ts, `authorizeLabelRoute`, wired by
   * the composition root): the project must be one of `labels.projects` and hold the port. Throws the refusal.
   */
  mayPublish(label: { container: string; hostname: string; port: number; project: string; held: boolean }): void;
  /** Every configured project and its role: a refusal is told to the project a label names only when it is one. */
  projects: ReadonlyMap<string, 'ps' | 'ms'>;
  now?: () => number;
}

export interface LabelRoutes {
  /** Brings the routes in line with the labels now (the topology actor calls it on every change). Never overlaps. */
  reconcile(): Promise<void>;
  stop(): void;
}

/** What the reconciling rounds share: the options, and what they remember between rounds. */
interface LabelState {
  options: LabelRoutesOptions;
  now: () => number;
  /** container + hostname → the fingerprint it was refused with: told once per state. */
  refused: Map<string, string>;
  /** hostname → when its container was first seen gone. */
  goneSince: Map<string, number>;
}

/**
 * The project a label acts for and the port it names. Refuses a label without a usable port or without a project;
 * whether that project may have this route is the policy's decision (`mayPublish`).
 */
function labelled(declared: DeclaredRoute): { project: string; port: number } {
  const { container, hostname, port, project } = declared;
  if (port === null || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new TunnelManagerError({
      code: 'INPUT_INVALID',
      message: `Container "${container}" asks for ${hostname} but its label ${PORT_LABEL} is ${port === null ? 'missing (and it does not publish exactly one port)' : 'not a port number'}.`,
      fix: `Recreate it with --label ${PORT_LABEL}=PORT, the port allocated to your project that the service listens on.`,
      details: { container, hostname, label: PORT_LABEL },
    });
  }
  if (project === null) {
    throw new TunnelManagerError({
      code: 'INPUT_INVALID',
      message: `Container "${container}" asks for ${hostname} on port ${port} but has no label ${PROJECT_LABEL}: a label route acts only for the project it names, never for whoever holds the port.`,
      fix: `Recreate it with --label ${PROJECT_LABEL}=PROJECT (your project, which must hold port ${port}), or publish it with tunnel_request_cname.`,
      details: { container, hostname, port, label: PROJECT_LABEL },
    });
  }
  return { project, port };
}

/** A declared hostname as the subdomain under the longest zone of the account that holds it. */
function split(backend: LabelRoutesOptions['backend'], hostname: string): { subdomain: string; domain: Hostname } {
  const zone = backend
    .listDomains()
    .map((domain) => domain.name)
    .filter((name) => hostname.endsWith(`.${name}`))
    .sort((a, b) => b.length - a.length)[0];
  if (zone === undefined) {
    throw new TunnelManagerError({
      code: 'ZONE_NOT_FOUND',
      message: `${hostname} (label ${HOSTNAME_LABEL}) is not a name under a zone of this Cloudflare account.`,
      fix: `Use a name under one of: ${backend.listDomains().map((d) => d.name).join(', ')} (tunnel_list_domains).`,
      details: { hostname },
    });
  }
  return { subdomain: hostname.slice(0, -(zone.length + 1)), domain: toHostname(zone) };
}

/** Publishes a declared route (or keeps the one there); a refusal is told once per state of the container. */
async function ensure(state: LabelState, declared: DeclaredRoute): Promise<void> {
  const { options, now, refused, goneSince } = state;
  const key = `${declared.container} ${declared.hostname}`;
  const existing = options.routes.find(declared.hostname);
  if (existing?.labelContainer && existing.project === declared.project) {
    goneSince.delete(declared.hostname);
    // A redeploy under another name declares the same route: it follows the new container.
    if (existing.labelContainer !== declared.container) options.routes.update(declared.hostname, { labelContainer: declared.container }, now());
    return;
  }
  if (!declared.running || refused.get(key) === declared.fingerprint) return;
  try {
    const { project, port } = labelled(declared);
    // Asked for with the tool already, by the same project: the label is honoured as it is (and never releases it).
    const held = existing !== undefined && existing.project === project && existing.targetPort === port;
    options.mayPublish({ container: declared.container, hostname: declared.hostname, port, project, held });
    if (held) return;
    const { subdomain, domain } = split(options.backend, declared.hostname);
    const result = await options.backend.requestCname(project, { subdomain, domain, targetPort: port, publishAhead: true });
    options.routes.update(declared.hostname, { labelContainer: declared.container }, now());
    refused.delete(key);
    options.bus.publish('route.label_published', project, { container: declared.container, hostname: declared.hostname, target: result.target, warning: result.warning });
  } catch (error) {
    refused.set(key, declared.fingerprint);
    tellRefusal(options, declared, toErrorShape(error));
  }
}

/** A refused label is told, with the fix, to the project it names (when that is a project) and to the meta-supervisor. */
function tellRefusal(options: LabelRoutesOptions, declared: DeclaredRoute, shape: ErrorShape): void {
  options.logger.warn({ container: declared.container, hostname: declared.hostname, project: declared.project?.slice(0, 63) ?? null, code: shape.code }, 'a route label was refused');
  const data = {
    container: declared.container,
    hostname: declared.hostname,
    port: declared.port,
    project: declared.project?.slice(0, 63) ?? null,
    code: shape.code,
    message: shape.message,
    fix: shape.fix,
  };
  const told = new Set([options.operatorProject]);
  if (declared.project !== null && options.projects.has(declared.project)) told.add(declared.project);
  for (const project of told) options.bus.publish('route.label_refused', project, data);
}

/** Releases the labelled routes whose container has been gone for the grace period. */
async function release(state: LabelState, declared: DeclaredRoute[]): Promise<void> {
  const { options, now, goneSince } = state;
  for (const route of options.routes.labelled()) {
    // Only a container of the route's own project keeps it: another's label for the same name is no claim on it.
    if (declared.some((entry) => entry.hostname === route.hostname && entry.project === route.project)) continue;
    const since = goneSince.get(route.hostname) ?? now();
    goneSince.set(route.hostname, since);
    if (now() - since < options.graceMs) continue;
    try {
      await options.backend.deleteCname(route.hostname);
      goneSince.delete(route.hostname);
      options.bus.publish('route.label_released', route.project, { container: route.labelContainer, hostname: route.hostname, goneForMs: now() - since });
    } catch (error) {
      options.logger.warn({ err: error, hostname: route.hostname }, 'could not release a route whose container is gone; trying again next round');
    }
  }
}

async function round(state: LabelState): Promise<void> {
  const declared = declaredRoutes(state.options.topology());
  for (const entry of declared) await ensure(state, entry);
  for (const key of state.refused.keys()) if (!declared.some((entry) => key === `${entry.container} ${entry.hostname}`)) state.refused.delete(key);
  await release(state, declared);
}

export function startLabelRoutes(options: LabelRoutesOptions): LabelRoutes {
  const state: LabelState = { options, now: options.now ?? Date.now, refused: new Map(), goneSince: new Map() };
  const rounds = startRounds(() => round(state), { intervalMs: options.intervalMs, logger: options.logger, what: 'reconciling route labels' });
  return { reconcile: rounds.runNow, stop: rounds.stop };
}
