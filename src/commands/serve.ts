import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../app/config/config.ts';
import { createLogger, prettyDestination, resolveLogFormat } from '../app/config/logger.ts';
import { DEFAULT_EDGE_LISTEN } from '../app/config/sandbox-mode.ts';
import { addressInUse } from '../app/operations/listen-conflict.ts';
import { sdNotify } from '../app/operations/sd-notify.ts';
import { startHeapTrimmer } from '../app/schedules/heap-trim.ts';
import { supervisorChild } from '../app/actors/supervisor-children.ts';
import { isTunnelRunning } from '../app/use-cases/tunnel-availability.ts';
import type { TunnelSnapshot } from '../app/use-cases/context.ts';
import { ask } from '../actor-ask.ts';
import { TunnelManagerError } from '../errors.ts';
import { startTunnelManager, type TunnelManager } from '../root/composition-root.ts';
import { configFrom } from './config-option.ts';
import { EXIT, UsageError, type Command, type Options } from './options.ts';
import { runningManager, managerPidfile } from './manager-process.ts';

const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function refuseSecondManager(config: Config): void {
  const other = runningManager(config);
  if (other === null) return;
  throw new TunnelManagerError({
    code: 'INPUT_INVALID',
    message: `Another tunnel-manager (pid ${other}) already serves ${config.dataDir}.`,
    fix: `Stop it first (kill -TERM ${other}), or use another --data-dir.`,
    details: { pid: other, dataDir: config.dataDir },
  });
}

function loggerFor(config: Config): Logger {
  const pretty = resolveLogFormat(config.logging.format, process.stderr.isTTY === true) === 'pretty';
  return createLogger({ level: config.logging.level, ...(pretty ? { destination: prettyDestination() } : {}) });
}

/**
 * A stop asked for while the tunnel manager boots is kept and carried out once it has started: the default action of
 * these signals would kill the process halfway, leaving the cloudflared it had just spawned with nobody to stop it.
 * One listener for the whole life of the process, whose behaviour changes once started: swapping listeners would
 * close and reopen libuv's signal handle, and a signal queued for the closed one is dropped (seen: a SIGTERM lost).
 */
function holdStopSignals(logger: Logger): { onceStarted(shutdown: (signal: NodeJS.Signals) => void): void } {
  let stopDuringBoot: NodeJS.Signals | null = null;
  let onStop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stop asked for during start-up: stopping once started');
    stopDuringBoot ??= signal;
  };
  for (const signal of STOP_SIGNALS) process.on(signal, (received: NodeJS.Signals) => onStop(received));
  return {
    onceStarted(shutdown) {
      // From now on a stop signal shuts down (SIGHUP: the terminal that ran `serve` in the foreground closed).
      onStop = shutdown;
      if (stopDuringBoot !== null) shutdown(stopDuringBoot);
    },
  };
}

/** Starts the composition root; an address another program holds is the machine's problem: says which listener. */
async function start(config: Config, options: Options, logger: Logger): Promise<TunnelManager> {
  try {
    return await startTunnelManager(config, {
      logger,
      ...(options.listen ? { mcpListen: options.listen } : {}),
      ...(options['edge-listen'] ? { edgeListen: options['edge-listen'] } : {}),
      ...(options.stdio && options.project ? { stdioProject: options.project } : {}),
    });
  } catch (error) {
    throw (
      addressInUse(error, {
        mcp: options.listen ?? config.mcp.listen,
        edge: config.cloudflare.apiBaseUrl ? null : (options['edge-listen'] ?? DEFAULT_EDGE_LISTEN),
        metrics: config.metrics.listen === 'off' ? null : config.metrics.listen,
      }) ?? error
    );
  }
}

/** The sandbox's banner (its demo tokens only to a terminal, never to a log), or where MCP listens. */
function announce(manager: TunnelManager, config: Config, out: NodeJS.WriteStream): void {
  const say = (text: string) => out.write(`${text}\n`);
  const info = manager.sandboxInfo;
  if (!info) {
    if (manager.mcp) say(`tunnel-manager is running: MCP at ${manager.mcp.url}`);
    return;
  }
  const sandboxFile = join(config.dataDir, 'sandbox.json');
  // Under systemd (the journal) or with the output redirected to a file, the banner says where the tokens are instead.
  const tokens = out.isTTY === true
    ? ['  MCP bearer tokens:', ...Object.entries(info.tokens).map(([project, token]) => `    ${project.padEnd(16)} ${token}`), `  all of this is in ${sandboxFile}`]
    : [`  MCP bearer tokens: in ${sandboxFile} (mode 0600; not printed, because this output is not a terminal)`, `  the rest is in ${sandboxFile} too`];
  say(
    [
      'tunnel-manager is running in sandbox mode (no Cloudflare credentials configured).',
      `  MCP (Streamable HTTP): ${info.mcpUrl}`,
      `  edge (the public side): ${info.edgeUrl}   e.g. curl -H 'Host: app.${config.tunnel.defaultZone}' ${info.edgeUrl}/`,
      `  Cloudflare API emulator: ${info.cloudflareApiUrl}`,
      info.cloudflared.kind === 'real'
        ? `  cloudflared: the real one, ${info.cloudflared.version} (${info.cloudflared.command.join(' ')}, from ${info.cloudflared.chosenBy}), connected to the edge at ${info.edgeTunnelAddress ?? '?'}`
        : '  cloudflared: the stand-in (no real cloudflared found: set cloudflared.command or TM_CLOUDFLARED, or put cloudflared on PATH)',
      ...tokens,
    ].join('\n'),
  );
}

/**
 * systemd (Type=notify): ready once MCP listens and cloudflared serves, or after a minute with the reason, so a
 * tunnel that cannot start yet does not keep the manager that supervises it from being "started".
 */
async function notifyReady(manager: TunnelManager): Promise<void> {
  // The tunnel actor's snapshots, not a poll: READY the moment it runs, or after the minute (the timeout is not an error here).
  const running = (snapshot: TunnelSnapshot) => (isTunnelRunning(snapshot) ? { value: true } : undefined);
  const notYet = () => new TunnelManagerError({ code: 'TUNNEL_NOT_RUNNING', message: 'cloudflared is not running yet', fix: 'none needed: READY is sent anyway', details: {} });
  await ask(supervisorChild(manager.supervisor.actor, 'tunnel'), null, { snapshot: running }, { ms: 60_000, error: notYet }).catch(() => false);
  const state = manager.backend.status().state;
  await sdNotify({ READY: '1', STATUS: state.startsWith('running') ? `serving: tunnel ${state}` : `started; tunnel ${state}, not serving yet` });
}

/** `tunnel-manager serve`: runs the tunnel manager until SIGTERM/SIGINT/SIGHUP (a second one exits at once). */
export const serve: Command = async (_positionals, options) => {
  const config = configFrom(options);
  if (options.stdio && !options.project) throw new UsageError('--stdio needs --project NAME: the project the stdio client acts as');
  refuseSecondManager(config);
  const logger = loggerFor(config);
  logger.info({ config: config.source ?? 'embedded defaults', dataDir: config.dataDir }, 'tunnel-manager starting');
  const signals = holdStopSignals(logger);
  const manager = await start(config, options, logger);
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(managerPidfile(config), `${process.pid}\n`);
  const heap = startHeapTrimmer({ logger });
  announce(manager, config, options.stdio ? process.stderr : process.stdout);
  void notifyReady(manager);
  return new Promise<number>((resolveExit) => {
    let received = 0;
    signals.onceStarted((signal) => {
      received += 1;
      if (received > 1) {
        logger.warn({ signal }, 'second signal: exiting at once');
        process.exit(EXIT.failed);
      }
      logger.info({ signal }, 'shutting down');
      void sdNotify({ STOPPING: '1', STATUS: `stopping (${signal})` });
      heap.stop();
      manager
        .stop()
        .then(() => {
          rmSync(managerPidfile(config), { force: true });
          resolveExit(EXIT.ok);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolveExit(EXIT.failed);
        });
    });
  });
};
