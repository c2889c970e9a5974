import { z } from 'zod';

/** Argument schemas shared by several tool groups. */
export const portArgument = z.number({ invalid_type_error: 'a whole number from 1 to 65535' }).int('a whole number').min(1).max(65535);

/**
 * A zod object whose every field carries its description (the compiler asks for one per key): what an agent reads
 * in tools/list for each field of an answer.
 */
export function describedObject<T extends z.ZodRawShape>(shape: T, descriptions: { [K in keyof T]: string }): z.ZodObject<T> {
  const described = Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, schema.describe(descriptions[key as keyof T])]));
  return z.object(described as T);
}
