import { z } from 'zod';

/** Argument schemas shared by several tool groups. */
export const portArgument = z.number({ invalid_type_error: 'a whole number from 1 to 65535' }).int('a whole number').min(1).max(65535);

/**
 * A zod object whose every field carries its description (the compiler asks for one per key): what an agent reads
 * in tools/list for each field of an answer.
 */
export function describedObject<T extends z.ZodRawShape>(shape: T, descriptions: { [K in keyof T]: string }): z.ZodObject<T> {
  const text = new Map<string, string>(Object.entries(descriptions));
  const described: z.ZodRawShape = Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, schema.describe(text.get(key) ?? '')]));
  if (!hasKeysOf(described, shape)) throw new Error('describedObject lost a key of its shape');
  return z.object(described);
}

/** The described shape has every key of the original, each the same schema with a description: the same type. */
function hasKeysOf<T extends z.ZodRawShape>(candidate: z.ZodRawShape, shape: T): candidate is T {
  return Object.keys(shape).every((key) => candidate[key] !== undefined);
}
