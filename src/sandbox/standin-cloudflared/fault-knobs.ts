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
 */
export interface FaultKnobs {
  exitAfterMs: number | null;
  neverReady: boolean;
  hang: boolean;
  slowStartMs: number;
  ignoreSigterm: boolean;
  readyConnections: number | null;
  edge: string | null;
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
  };
}
