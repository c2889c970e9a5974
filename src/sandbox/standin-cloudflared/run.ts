import http, { type Server } from 'node:http';
import { matchIngressRule } from '../../cloudflared/ingress/ingress-validation.ts';
import type { CloudflaredConfig } from '../../ingress-model.ts';
import { parseStandinCommandLine, type TunnelRunOptions } from './command-line.ts';
import { readStandinConfig } from './config-reader.ts';
import { startSandboxEdge } from '../edge/edge.ts';
import { KnobError, readFaultFile, readFaultKnobs, type FaultFileDirectives, type FaultKnobs } from './fault-knobs.ts';
import { startMetricsServer } from './metrics-server.ts';
import { createOriginHandler } from './origin-proxy.ts';
import { TunnelSession, type Level, type Log } from './tunnel-session.ts';
import { STANDIN_MARK, STANDIN_VERSION } from './version.ts';

/**
 * The stand-in cloudflared as a program: `runStandinCloudflared(argv)` resolves with the exit code once
 * the tunnel has stopped (the caller exits the process with it). Signals: the first SIGTERM/SIGINT drains
 * within the grace period, a second one exits at once — as cloudflared does.
 */
export { STANDIN_VERSION } from './version.ts';

const LEVEL_RANK: Record<Level, number> = { DBG: 0, INF: 1, WRN: 2, ERR: 3 };
const LOGLEVEL_RANK: Record<string, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };

export interface StandinIo {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

function createLog(stderr: NodeJS.WritableStream, loglevel: string): Log {
  const threshold = LOGLEVEL_RANK[loglevel] ?? 1;
  return (level, message) => {
    if (LEVEL_RANK[level] < threshold) return;
    stderr.write(`${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} ${level} ${message}\n`);
  };
}

async function runEdge(options: { listen: string; tunnelListen: string | null; caDir: string | null }, io: StandinIo): Promise<number> {
  const log = createLog(io.stderr, 'info');
  const edge = await startSandboxEdge({ listen: options.listen, ...(options.tunnelListen !== null && options.caDir !== null ? { tunnelListen: options.tunnelListen, caDir: options.caDir } : {}) });
  log('INF', `Sandbox edge listening on http://${edge.address} pid=${process.pid}`);
  if (edge.tunnelAddress !== null) log('INF', `Sandbox edge takes cloudflared on ${edge.tunnelAddress} (--edge ${edge.tunnelAddress} --cacert ${edge.caPath ?? ''} --protocol http2)`);
  io.stdout.write(`${edge.address}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await edge.close();
  log('INF', 'Sandbox edge stopped');
  return 0;
}

function listenOrigin(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error(`The origin listens on ${String(address)}, not on a TCP port.`));
      else resolve(address.port);
    });
  });
}

interface CheckedStart {
  config: CloudflaredConfig;
  path: string;
  tunnelId: string;
  faults: FaultFileDirectives;
}

/** The config file, the tunnel's id and the fault file, or null after logging why the tunnel does not start. */
function checkStart(options: TunnelRunOptions, knobs: FaultKnobs, log: Log): CheckedStart | null {
  const read = readStandinConfig(options.configPath);
  if (!read.ok) {
    read.errors.forEach((error) => log('ERR', error));
    return null;
  }
  const { config } = read;
  const tunnelId = options.tunnelId ?? config.tunnel ?? null;
  if (tunnelId === null) {
    log('ERR', '"cloudflared tunnel run" requires the ID or name of the tunnel to run as the last command line argument or in the configuration file.');
    return null;
  }
  let faults: FaultFileDirectives;
  try {
    faults = readFaultFile(knobs.faultFile);
  } catch (error) {
    if (!(error instanceof KnobError)) throw error;
    log('ERR', error.message);
    return null;
  }
  const refused = faults.refuseStart
    ? 'refuse-start'
    : config.ingress.find((rule) => typeof rule.hostname === 'string' && faults.refuseHostnames.includes(rule.hostname.toLowerCase()))?.hostname;
  if (refused !== undefined) {
    log('ERR', `Couldn't start tunnel error="the configuration was refused (fault injected by ${knobs.faultFile}: ${refused === 'refuse-start' ? 'refuse-start' : `refuse-hostname ${refused}`})"`);
    return null;
  }
  return { config, path: read.path, tunnelId, faults };
}

async function startMetrics(options: TunnelRunOptions, knobs: FaultKnobs, session: TunnelSession, log: Log): Promise<{ server: Server; address: string } | null> {
  const { counters } = session;
  try {
    return await startMetricsServer(options.metricsAddress, {
      connectorId: session.connectorId,
      readyConnections: () => session.readyConnections(),
      hang: knobs.hang,
      metricsText: () => {
        counters.haConnections = session.readyConnections();
        return counters.render({ version: STANDIN_VERSION });
      },
    });
  } catch (error) {
    log('ERR', `failed to start the metrics server error="${error instanceof Error ? error.message : String(error)}"`);
    return null;
  }
}

async function runTunnel(options: TunnelRunOptions, knobs: FaultKnobs, io: StandinIo): Promise<number> {
  const log = createLog(io.stderr, options.loglevel);
  const checked = checkStart(options, knobs, log);
  if (checked === null) return 1;
  const { config, tunnelId } = checked;
  const session = new TunnelSession(options, knobs, checked.faults, tunnelId, log);

  log('INF', `Starting tunnel tunnelID=${tunnelId} version=${STANDIN_VERSION} pid=${process.pid}`);
  log('INF', `Settings: config=${checked.path} rules=${config.ingress.length} gracePeriod=${options.gracePeriodMs}ms`);

  const metrics = await startMetrics(options, knobs, session, log);
  if (metrics === null) return 1;
  log('INF', `Starting metrics server on ${metrics.address}/metrics`);

  const rules = config.ingress;
  const origin = http.createServer(
    createOriginHandler({
      match: (hostname, path) => rules[matchIngressRule(rules, hostname, path)],
      defaults: config.originRequest ?? {},
      counters: session.counters,
      log,
    }),
  );
  const originPort = await listenOrigin(origin, knobs.originListen);
  // 0.0.0.0 (a stand-in in a container): the edge sends to the address the registration came from.
  session.start(`http://${knobs.originListen}:${originPort}`);

  const code = await session.finished;
  session.stop();
  for (const server of [origin, metrics.server]) {
    server.close();
    server.closeAllConnections();
  }
  session.removePidfile();
  log('INF', code === 0 ? 'Tunnel server stopped' : `Tunnel server exiting with code ${code}`);
  return code;
}

export async function runStandinCloudflared(argv: string[], io: Partial<StandinIo> = {}): Promise<number> {
  const resolved: StandinIo = { env: io.env ?? process.env, stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr };
  const command = parseStandinCommandLine(argv);
  switch (command.kind) {
    case 'usage-error':
      resolved.stderr.write(`${command.message}\n`);
      return 1;
    case 'version':
      resolved.stdout.write(`cloudflared version ${STANDIN_VERSION} (${STANDIN_MARK})\n`);
      return 0;
    case 'edge':
      return runEdge(command, resolved);
    case 'tunnel-run': {
      let knobs: FaultKnobs;
      try {
        knobs = readFaultKnobs(resolved.env);
      } catch (error) {
        if (!(error instanceof KnobError)) throw error;
        resolved.stderr.write(`${error.message}\n`);
        return 1;
      }
      return runTunnel(command, knobs, resolved);
    }
  }
}
