import { destination, pino, type DestinationStream, type Logger } from 'pino';
import { redact, redactString } from '../secrets/redact.ts';

export type { Logger } from 'pino';

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
          const cleaned = args.map((arg) => (typeof arg === 'string' ? redactString(arg) : arg)) as Parameters<typeof method>;
          method.apply(this, cleaned);
        },
      },
    },
    options.destination ?? destination(2),
  );
}
