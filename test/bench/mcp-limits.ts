/**
 * What a misbehaving or hostile client can cost the manager: 3,000 MCP sessions opened by one project and never
 * closed, and a flood of requests without a valid token. Measured on `tunnel-manager serve` (sandbox) as a real
 * process: its resident memory before and after, the sessions it keeps, and the audit rows the flood wrote.
 *
 *   node --import tsx test/bench/mcp-limits.ts [--write] [--sessions N] [--flood N]
 */
import Database from 'better-sqlite3';
import { RawMcpClient, isMain, machineLine, memoryOf, sleep, startServe, tempDataDir, verdict, writeDocSection, writeServeConfig } from './support.ts';

export interface LimitFigures {
  sessions: number;
  rssBeforeMb: number;
  rssAfterSessionsMb: number;
  perSessionKb: number;
  sessionsKept: number;
  flood: number;
  floodStatuses: Record<string, number>;
  auditRowsFromFlood: number;
}

async function gcSettled(pid: number): Promise<number> {
  // The manager trims its heap on its own after growth (heap-trim); give it the time to.
  await sleep(35_000);
  return memoryOf(pid).rssMb;
}

export async function runLimitsBenchmark(options: { sessions?: number; flood?: number; settle?: boolean } = {}): Promise<LimitFigures> {
  const sessions = options.sessions ?? 3000;
  const flood = options.flood ?? 5000;
  const dir = tempDataDir('limits');
  const serve = await startServe(dir.path, await writeServeConfig(dir.path));
  try {
    const token = serve.info.tokens.consilio as string;
    const rssBeforeMb = options.settle === false ? memoryOf(serve.pid).rssMb : await gcSettled(serve.pid);
    for (let opened = 0; opened < sessions; opened += 50) {
      await Promise.all(Array.from({ length: Math.min(50, sessions - opened) }, () => new RawMcpClient(serve.info.mcpUrl, token).initialize()));
    }
    const rssAfterSessionsMb = options.settle === false ? memoryOf(serve.pid).rssMb : await gcSettled(serve.pid);
    const db = new Database(serve.info.databasePath, { readonly: true });
    const countRows = () => (db.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE principal = 'unauthenticated'").get() as { n: number }).n;
    const rowsBefore = countRows();
    const statuses: Record<string, number> = {};
    for (let sent = 0; sent < flood; sent += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, flood - sent) }, async () => {
          const response = await fetch(serve.info.mcpUrl, { method: 'POST', headers: { authorization: 'Bearer tmk_wrong', 'content-type': 'application/json' }, body: '{}' });
          await response.text();
          return response.status;
        }),
      );
      for (const status of batch) statuses[status] = (statuses[status] ?? 0) + 1;
    }
    const auditRowsFromFlood = countRows() - rowsBefore;
    db.close();
    const kept = (serve.output().match(/"msg":"MCP session opened"/g) ?? []).length - (serve.output().match(/"msg":"MCP session closed by the server"/g) ?? []).length;
    return {
      sessions,
      rssBeforeMb,
      rssAfterSessionsMb,
      perSessionKb: Math.round(((rssAfterSessionsMb - rssBeforeMb) * 1024 * 10) / sessions) / 10,
      sessionsKept: kept,
      flood,
      floodStatuses: statuses,
      auditRowsFromFlood,
    };
  } finally {
    await serve.stop();
    dir.remove();
  }
}

export function limitsSection(figures: LimitFigures): string {
  return [
    'Goal (issue: under faults and attack): a client that opens sessions and never closes them, or floods the listener',
    'without a token, costs bounded memory and bounded audit rows. Before the limits: 3,000 sessions added 127 MB',
    '(43 KB each, no cap, no expiry) and every unauthenticated request wrote a row (580 rows/s).',
    '',
    'Command: `node --import tsx test/bench/mcp-limits.ts --write` (also `npm run bench`, `test/bench/mcp-limits.bench.ts`,',
    'with fewer requests and no settling).',
    '',
    `Scenario: \`serve\` (sandbox) as a real process; one project opens ${figures.sessions} sessions (initialize, never closed), 50 at a`,
    `time; RSS (VmRSS) is read 35 s after boot and 35 s after the last session (the manager trims its heap on growth). Then`,
    `${figures.flood} requests with a wrong token, 100 at a time, and the \`unauthenticated\` audit rows they added are counted.`,
    '',
    '| figure | value | goal |',
    '| --- | --- | --- |',
    `| RSS before, MB | ${figures.rssBeforeMb} | |`,
    `| RSS after ${figures.sessions} sessions, MB | ${figures.rssAfterSessionsMb} | |`,
    `| growth per session opened, KB | ${figures.perSessionKb} | was 43 |`,
    `| sessions kept open | ${figures.sessionsKept} | ≤ 16 (\`mcp.maxSessionsPerProject\`): ${verdict(figures.sessionsKept <= 16)} |`,
    `| answers to the flood | ${Object.entries(figures.floodStatuses).map(([status, n]) => `${n} × HTTP ${status}`).join(', ')} | all 401 |`,
    `| audit rows written by the flood | ${figures.auditRowsFromFlood} | one per minute and address: ${verdict(figures.auditRowsFromFlood <= 2)} |`,
    '',
    machineLine(),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = (flag: string) => (args.indexOf(flag) >= 0 ? Number(args[args.indexOf(flag) + 1]) : undefined);
  const sessions = at('--sessions');
  const flood = at('--flood');
  const figures = await runLimitsBenchmark({ ...(sessions ? { sessions } : {}), ...(flood ? { flood } : {}) });
  console.log(JSON.stringify(figures, null, 2));
  if (args.includes('--write')) console.log(`wrote ${writeDocSection('MCP sessions and unauthenticated floods', limitsSection(figures))}`);
}
