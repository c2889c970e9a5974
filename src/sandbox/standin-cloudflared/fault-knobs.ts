import { existsSync, readFileSync } from 'node:fs';

/**
 * Fault knobs of the stand-in cloudflared, read from the environment so a test (or an operator trying the
 * sandbox) can make it misbehave the ways a real cloudflared does.
 *
 * | variable                        | effect                                                                |
 * | ------------------------------- | --------------------------------------------------------------------- |
 * | TM_STANDIN_EXIT_AFTER=S         | exit with code 1 after S seconds (a crash)                            |
 * | TM_STANDIN_NEVER_READY=1        | /ready keeps answering 503 with 0 ready connections                   |
 * | TM_STANDIN_HANG=1               | the metrics server accepts connections but never answers /ready       |
 * | TM_STANDIN_SLOW_START=S         | wait S seconds before connecting (and before /ready can answer 200)   |
 * | TM_STANDIN_IGNORE_SIGTERM=1     | ignore SIGTERM and SIGINT (only SIGKILL ends it)                      |
 * | TM_STANDIN_READY_CONNECTIONS=N  | report N ready connections instead of 4 (N < 4 means degraded)        |
 * | TM_STANDIN_EDGE=HOST:PORT       | the sandbox edge to connect to (same as --edge)                       |
 * | TM_STANDIN_ORIGIN_LISTEN=ADDR   | where the edge's requests come in (default 127.0.0.1; 0.0.0.0 in a    |
 * |                                 | container: the edge uses the address the registration came from)     |
 * | TM_STANDIN_FAULT_FILE=PATH      | read faults from PATH at each start (see below)                       |
 *
 * The environment of a process is fixed when it is spawned, and a manager passes the same one to every replica it
 * starts. The fault file can be changed while the manager runs, so a test can make only the NEXT start misbehave:
 * each start reads it (a missing or empty file means no fault). One directive per line, `#` starts a comment:
 *
 *   refuse-start            exit 1 at start-up with a cloudflared-like error, before serving anything
 *   refuse-hostname HOST    the same, but only when config.yml has an ingress rule for HOST
 *   slow-start S            wait S seconds before connecting (as TM_STANDIN_SLOW_START)
 */
export interface FaultKnobs {
  exitAfterMs: number | null;
  neverReady: boolean;
  hang: boolean;
  slowStartMs: number;
  ignoreSigterm: boolean;
  readyConnections: number | null;
  edge: string | null;
  /** TM_STANDIN_ORIGIN_LISTEN: the address the stand-in takes the edge's requests on. */
  originListen: string;
  /** TM_STANDIN_FAULT_FILE: read at start by readFaultFile. */
  faultFile: string | null;
}

/** What the fault file asks of this start. */
export interface FaultFileDirectives {
  refuseStart: boolean;
  refuseHostnames: string[];
  slowStartMs: number | null;
}

export class KnobError extends Error {}

function seconds(env: NodeJS.ProcessEnv, name: string): number | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new KnobError(`${name}=${raw} is not a number of seconds (expected e.g. ${name}=2.5)`);
  return Math.round(value * 1000);
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = env[name];
  return raw !== undefined && raw !== '' && raw !== '0' && raw.toLowerCase() !== 'false';
}

export function readFaultKnobs(env: NodeJS.ProcessEnv): FaultKnobs {
  const rawReady = env.TM_STANDIN_READY_CONNECTIONS;
  let readyConnections: number | null = null;
  if (rawReady !== undefined && rawReady !== '') {
    readyConnections = Number(rawReady);
    if (!Number.isInteger(readyConnections) || readyConnections < 0 || readyConnections > 16) {
      throw new KnobError(`TM_STANDIN_READY_CONNECTIONS=${rawReady} is not a whole number from 0 to 16`);
    }
  }
  return {
    exitAfterMs: seconds(env, 'TM_STANDIN_EXIT_AFTER'),
    neverReady: flag(env, 'TM_STANDIN_NEVER_READY'),
    hang: flag(env, 'TM_STANDIN_HANG'),
    slowStartMs: seconds(env, 'TM_STANDIN_SLOW_START') ?? 0,
    ignoreSigterm: flag(env, 'TM_STANDIN_IGNORE_SIGTERM'),
    readyConnections,
    edge: env.TM_STANDIN_EDGE === undefined || env.TM_STANDIN_EDGE === '' ? null : env.TM_STANDIN_EDGE,
    originListen: env.TM_STANDIN_ORIGIN_LISTEN === undefined || env.TM_STANDIN_ORIGIN_LISTEN === '' ? '127.0.0.1' : env.TM_STANDIN_ORIGIN_LISTEN,
    faultFile: env.TM_STANDIN_FAULT_FILE === undefined || env.TM_STANDIN_FAULT_FILE === '' ? null : env.TM_STANDIN_FAULT_FILE,
  };
}

/** Parses the fault file's text; an unknown directive is a KnobError naming the line. */
export function parseFaultFile(text: string, path = 'TM_STANDIN_FAULT_FILE'): FaultFileDirectives {
  const directives: FaultFileDirectives = { refuseStart: false, refuseHostnames: [], slowStartMs: null };
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const [word, ...args] = line.split(/\s+/);
    if (word === 'refuse-start' && args.length === 0) directives.refuseStart = true;
    else if (word === 'refuse-hostname' && args.length === 1) directives.refuseHostnames.push((args[0] ?? '').toLowerCase());
    else if (word === 'slow-start' && args.length === 1 && Number.isFinite(Number(args[0])) && Number(args[0]) >= 0) directives.slowStartMs = Math.round(Number(args[0]) * 1000);
    else throw new KnobError(`${path}:${index + 1}: ${JSON.stringify(line)} is not a fault (expected "refuse-start", "refuse-hostname HOST" or "slow-start SECONDS")`);
  });
  return directives;
}

/** Reads the fault file named by TM_STANDIN_FAULT_FILE now; no file (or no variable) means no fault. */
export function readFaultFile(path: string | null): FaultFileDirectives {
  if (path === null || !existsSync(path)) return { refuseStart: false, refuseHostnames: [], slowStartMs: null };
  return parseFaultFile(readFileSync(path, 'utf8'), path);
}
