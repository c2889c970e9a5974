import { z } from 'zod';

/** Argument schemas shared by several tool groups. */
export const portArgument = z.number({ invalid_type_error: 'a whole number from 1 to 65535' }).int('a whole number').min(1).max(65535);
