import { z } from 'zod';

/** The value forms the configuration's keys take (src/app/config/config.ts puts them together). */

export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'a HOST:PORT address such as 127.0.0.1:8787')
  .refine((value) => Number(value.slice(value.lastIndexOf(':') + 1)) <= 65535, 'a port from 0 to 65535');

/** A web origin as browsers send it: `scheme://host[:port]`, lower case, no path, no trailing slash. */
export const origin = z
  .string()
  .regex(/^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/, 'an origin such as https://dashboard.example.com or http://localhost:6274 (scheme, host, optional port; lower case; no path)');

const portRange = z
  .string()
  .regex(/^\d{1,5}-\d{1,5}$/, 'a port range FROM-TO such as 3100-3199')
  .transform((value, ctx) => {
    const [from = 0, to = 0] = value.split('-').map(Number);
    if (from < 1 || to > 65535 || from > to) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a port range FROM-TO with 1 <= FROM <= TO <= 65535' });
      return z.NEVER;
    }
    return { from, to };
  });

export const projectName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a project name of lowercase letters, digits and dashes (at most 63), such as consilio');

const tokenHash = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>, as printed by `tunnel-manager token hash`');

export const projectSchema = z
  .object({
    name: projectName,
    role: z.enum(['ps', 'ms']),
    ports: portRange,
    tokenHash: tokenHash.optional(),
  })
  .strict();

export const positiveSeconds = z.number().positive('a number of seconds greater than 0');
export const positiveHours = z.number().positive('a number of hours greater than 0');
