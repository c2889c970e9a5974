import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { matchIngressRule } from '../../cloudflared/ingress-validation.ts';
import { parseStandinCommandLine, type TunnelRunOptions } from './command-line.ts';
import { readStandinConfig } from './config-reader.ts';
import { startSandboxEdge } from '../edge/edge.ts';
import { EdgeConnector } from './edge-connector.ts';
import { KnobError, readFaultFile, readFaultKnobs, type FaultFileDirectives, type FaultKnobs } from './fault-knobs.ts';
import { startMetricsServer } from './metrics-server.ts';
import { createOriginHandler } from './origin-proxy.ts';
import { RequestCounters } from './request-counters.ts';
import { STANDIN_MARK, STANDIN_VERSION } from './version.ts';

/**
 * The stand-in cloudflared as a program: `runStandinCloudflared(argv)` resolves with the exit code once
 * the tunnel has stopped (the caller exits the process with it). Signals: the first SIGTERM/SIGINT drains
 * within the grace period, a second one exits at once — as cloudflared does.
 */
export { STANDIN_VERSION } from './version.ts';

type Level = 'DBG' | 'INF' | 'WRN' | 'ERR';
const LEVEL_RANK: Record<Level, number> = { DBG: 0, INF: 1, WRN: 2, ERR: 3 };
const LOGLEVEL_RANK: Record<string, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };

export interface StandinIo {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

function createLog(stderr: NodeJS.WritableStream, loglevel: string): (level: Level, message: string) => void {
  const threshold = LOGLEVEL_RANK[loglevel] ?? 1;
  return (level, message) => {
    if (LEVEL_RANK[level] < threshold) return;
    stderr.write(`${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} ${level} ${message}\n`);
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

async function runTunnel(options: TunnelRunOptions, knobs: FaultKnobs, io: StandinIo): Promise<number> {
  const log = createLog(io.stderr, options.loglevel);
  const read = readStandinConfig(options.configPath);
  if (!read.ok) {
    read.errors.forEach((error) => log('ERR', error));
    return 1;
  }
  const { config } = read;
  const tunnelId = options.tunnelId ?? config.tunnel ?? null;
  if (tunnelId === null) {
    log('ERR', '"cloudflared tunnel run" requires the ID or name of the tunnel to run as the last command line argument or in the configuration file.');
    return 1;
  }
  let faults: FaultFileDirectives;
  try {
    faults = readFaultFile(knobs.faultFile);
  } catch (error) {
    if (!(error instanceof KnobError)) throw error;
    log('ERR', error.message);
    return 1;
  }
  const refused = faults.refuseStart
    ? 'refuse-start'
    : config.ingress.find((rule) => typeof rule.hostname === 'string' && faults.refuseHostnames.includes(rule.hostname.toLowerCase()))?.hostname;
  if (refused !== undefined) {
    log('ERR', `Couldn't start tunnel error="the configuration was refused (fault injected by ${knobs.faultFile}: ${refused === 'refuse-start' ? 'refuse-start' : `refuse-hostname ${refused}`})"`);
    return 1;
  }
  const slowStartMs = faults.slowStartMs ?? knobs.slowStartMs;
  const connectorId = randomUUID();
  const edgeAddress = options.edge ?? knobs.edge;
  const wanted = knobs.readyConnections ?? options.haConnections ?? 4;
  const counters = new RequestCounters();
  let connector: EdgeConnector | null = null;
  let simulatedReady = 0;
  const readyConnections = (): number => (knobs.neverReady ? 0 : connector !== null ? connector.readyConnections : simulatedReady);

  log('INF', `Starting tunnel tunnelID=${tunnelId} version=${STANDIN_VERSION} pid=${process.pid}`);
  log('INF', `Settings: config=${read.path} rules=${config.ingress.length} gracePeriod=${options.gracePeriodMs}ms`);

  let metrics: { server: Server; address: string };
  try {
    metrics = await startMetricsServer(options.metricsAddress, {
      connectorId,
      readyConnections,
      hang: knobs.hang,
      metricsText: () => {
        counters.haConnections = readyConnections();
        return counters.render({ version: STANDIN_VERSION });
      },
    });
  } catch (error) {
    log('ERR', `failed to start the metrics server error="${(error as Error).message}"`);
    return 1;
  }
  log('INF', `Starting metrics server on ${metrics.address}/metrics`);

  const rules = config.ingress;
  const origin = http.createServer(
    createOriginHandler({
      match: (hostname, path) => rules[matchIngressRule(rules, hostname, path)],
      defaults: config.originRequest ?? {},
      counters,
      log,
    }),
  );
  const originPort = await listenOrigin(origin, knobs.originListen);

  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let pidfileWritten = false;
  const writePidfile = (): void => {
    if (options.pidfile === null || pidfileWritten) return;
    pidfileWritten = true;
    writeFileSync(options.pidfile, `${process.pid}\n`);
  };

  const timers: NodeJS.Timeout[] = [];
  if (knobs.exitAfterMs !== null) {
    timers.push(
      setTimeout(() => {
        log('ERR', `TM_STANDIN_EXIT_AFTER reached: exiting with code 1 as a crashed cloudflared would`);
        finish(1);
      }, knobs.exitAfterMs),
    );
  }

  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (knobs.ignoreSigterm) {
      log('WRN', `Received ${signal} and ignoring it (TM_STANDIN_IGNORE_SIGTERM)`);
      return;
    }
    if (shuttingDown) {
      log('INF', `Received a second signal ${signal}: exiting now`);
      finish(0);
      return;
    }
    shuttingDown = true;
    log('INF', `Initiating graceful shutdown due to signal ${signal} ...`);
    connector?.stop();
    simulatedReady = 0;
    const unregisteredAt = Date.now();
    const deadline = unregisteredAt + options.gracePeriodMs;
    // Requests the edge sent just before it saw the connections close still arrive: wait a moment for them,
    // then until nothing is in flight, or the grace period ends.
    const check = (): void => {
      const now = Date.now();
      const settled = now - unregisteredAt >= Math.min(200, options.gracePeriodMs);
      if ((settled && counters.concurrentRequests === 0) || now >= deadline) {
        if (counters.concurrentRequests > 0) log('WRN', `Grace period over with ${counters.concurrentRequests} request(s) still in flight`);
        finish(0);
        return;
      }
      timers.push(setTimeout(check, 20));
    };
    check();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const connect = async (): Promise<void> => {
    if (slowStartMs > 0) {
      log('INF', `Slow start: connecting in ${slowStartMs} ms (${faults.slowStartMs !== null ? 'TM_STANDIN_FAULT_FILE' : 'TM_STANDIN_SLOW_START'})`);
      await delay(slowStartMs);
    }
    if (shuttingDown) return;
    if (knobs.neverReady) {
      log('WRN', 'Never registering a connection (TM_STANDIN_NEVER_READY): /ready stays 503');
      return;
    }
    if (edgeAddress === null) {
      simulatedReady = wanted;
      log('INF', `No sandbox edge configured (--edge or TM_STANDIN_EDGE): reporting ${wanted} ready connection(s) without one`);
      writePidfile();
      return;
    }
    connector = new EdgeConnector({
      edge: edgeAddress,
      connectorId,
      tunnelId,
      // 0.0.0.0 (a stand-in in a container): the edge sends to the address the registration came from.
      originUrl: `http://${knobs.originListen}:${originPort}`,
      connections: wanted,
      log,
      onRegistered: (index, location) => {
        counters.registrations += 1;
        counters.locations.set(index, location);
      },
      onChange: (ready) => {
        if (ready > 0) writePidfile();
      },
    });
    connector.start();
  };
  void connect();

  const code = await finished;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  timers.forEach((timer) => clearTimeout(timer));
  (connector as EdgeConnector | null)?.stop();
  for (const server of [origin, metrics.server]) {
    server.close();
    server.closeAllConnections();
  }
  if (pidfileWritten && options.pidfile !== null) rmSync(options.pidfile, { force: true });
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
