import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { orphanScanSchema } from '../../../contract/routes.ts';

export const scanOrphans = defineTool({
  name: 'tunnel_scan_orphans',
  title: 'Find orphaned routes',
  description:
    'Runs the orphan scan now (it also runs at start and weekly): finds routes whose project left the configuration, whose DNS record no longer ' +
    'points at the tunnel, or whose port is no longer allocated to their project. Flags them (tunnel_list_cnames shows `orphan`) and tells each ' +
    'owner once (event route.orphaned). Only a removed project\'s routes are removed, after orphans.projectRemovedGraceHours; each finding says what to do.',
  input: z.object({}).strict(),
  output: orphanScanSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  access: 'ms',
  handler: async (_args, { backend }) => {
    const { at, ...result } = await backend.scanOrphans();
    return { scannedAt: new Date(at).toISOString(), ...result };
  },
});
