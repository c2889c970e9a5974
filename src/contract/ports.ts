import { z } from 'zod';
import { describedObject } from './arguments.ts';

/** One allocated port, as port_allocate and port_list answer it. */
export const allocationSchema = describedObject(
  { port: z.number(), project: z.string(), purpose: z.string(), allocatedAt: z.string() },
  { port: 'the allocated port', project: 'the project it belongs to', purpose: 'what runs on it, as given', allocatedAt: 'when it was allocated (ISO 8601)' },
);
