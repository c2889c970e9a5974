import type { Tool } from '../tool-definition.ts';
import { getAudit } from './admin/get-audit.ts';
import { inspectSupervisor } from './admin/inspect.ts';
import { rollbackConfig } from './admin/rollback-config.ts';
import { checkConnectivity } from './network/check-connectivity.ts';
import { recommendConfig } from './network/recommend-config.ts';
import { getTopology } from './network/topology.ts';
import { allocatePort } from './ports/allocate.ts';
import { listPorts } from './ports/list.ts';
import { releasePort } from './ports/release.ts';
import { deleteCname } from './routes/delete-cname.ts';
import { getTraffic } from './routes/get-traffic.ts';
import { listCnames } from './routes/list-cnames.ts';
import { listDomains } from './routes/list-domains.ts';
import { requestCname } from './routes/request-cname.ts';
import { scanOrphans } from './routes/scan-orphans.ts';
import { updateCname } from './routes/update-cname.ts';
import { getEvents } from './status/get-events.ts';
import { getMetrics } from './status/get-metrics.ts';
import { getStatus } from './status/get-status.ts';
import { ping } from './status/ping.ts';
import { restartTunnel } from './status/restart.ts';

/** Every tool, one per file, in the order tools/list shows them. */
export const ALL_TOOLS: readonly Tool[] = [
  ping,
  getStatus,
  getMetrics,
  restartTunnel,
  requestCname,
  updateCname,
  deleteCname,
  listCnames,
  getTraffic,
  listDomains,
  scanOrphans,
  allocatePort,
  releasePort,
  listPorts,
  checkConnectivity,
  recommendConfig,
  getTopology,
  getEvents,
  rollbackConfig,
  getAudit,
  inspectSupervisor,
];
