import { Writable } from 'node:stream';
import { createLogger } from '../../src/app/config/logger.ts';

/** A logger (level debug) whose lines a test reads back, one JSON text per line. */
export function captureLogs(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return { logger: createLogger({ destination, level: 'debug' }), lines };
}
