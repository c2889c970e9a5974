import type { AnyToolDefinition } from '../tool-definition.ts';
import { ADMIN_TOOLS } from './admin-tools.ts';
import { EVENT_TOOLS } from './event-tools.ts';
import { NETWORK_TOOLS } from './network-tools.ts';
import { PORT_TOOLS } from './port-tools.ts';
import { ROUTE_TOOLS } from './route-tools.ts';
import { STATUS_TOOLS } from './status-tools.ts';

/** Every tool, grouped by concern (one file per group). */
export const ALL_TOOLS: AnyToolDefinition[] = [
  ...STATUS_TOOLS,
  ...ROUTE_TOOLS,
  ...PORT_TOOLS,
  ...NETWORK_TOOLS,
  ...EVENT_TOOLS,
  ...ADMIN_TOOLS,
] as unknown as AnyToolDefinition[];
