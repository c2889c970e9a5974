import { createRequire } from 'node:module';
import { destination, pino, type DestinationStream, type Logger } from 'pino';
import { redact, redactString } from '../../redact.ts';

export type { Logger } from 'pino';

export type LogFormat = 'auto' | 'json' | 'pretty';

/** `auto` is pretty on a terminal and JSON anywhere else. */
export function resolveLogFormat(format: LogFormat, stderrIsTty: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (stderrIsTty ? 'pretty' : 'json') : format;
}

type PrettyFactory = (options: Record<string, unknown>) => DestinationStream;

function isPrettyFactory(value: unknown): value is PrettyFactory {
  return typeof value === 'function';
}

/**
 * pino's own pretty printer, as a synchronous stream on stderr (no worker thread), loaded only when asked for: an
 * operator at a terminal reads lines like `12:00:01.234 INFO: tunnel-manager starting`, not JSON.
 */
export function prettyDestination(): DestinationStream {
  const pretty: unknown = createRequire(import.meta.url)('pino-pretty');
  if (!isPrettyFactory(pretty)) throw new Error('pino-pretty did not export its factory function: reinstall it (npm ci)');
  return pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' });
}

/**
 * pino JSON logs to stderr (stdout stays free for command output and the stdio MCP transport).
 * Every object and message passes through the redactor, so a token that reaches a log call is blanked.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream; name?: string } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'tunnel-manager',
      level: options.level ?? 'info',
      formatters: {
        log: (object) => redact(object),
      },
      hooks: {
        logMethod(args, method) {
          args.forEach((arg, index) => {
            if (typeof arg === 'string') args[index] = redactString(arg);
          });
          method.apply(this, args);
        },
      },
    },
    options.destination ?? destination(2),
  );
}
