/**
 * MCP read tools at 1,000 routes (docs/design.md, Budgets: p99 ≤ 1.5 × a no-op tool on the same server).
 *
 * A real `tunnel-manager serve` process (sandbox mode) on a temp data directory; 1,000 active routes are
 * inserted into its ledger through RoutesRepository on a second connection to the same SQLite file (what
 * 1,000 finished sagas leave, without running them). Then, over loopback HTTP with keep-alive, one MCP
 * session per principal calls, round-robin so drift hits every tool alike:
 *   tunnel_ping (the no-op), tunnel_get_status, tunnel_list_cnames as the meta-supervisor (all routes),
 *   tunnel_list_cnames as one project supervisor (its 250).
 *
 *   node --import tsx test/bench/mcp-read-tools.ts [--calls 1000] [--write]
 */
import { openDatabase } from '../../src/store/database.ts';
import { waitUntil } from '../helpers/cli.ts';
import { DomainsRepository } from '../../src/store/domains-repository.ts';
import { RawMcpClient, isMain, machineLine, seedRoutes, spreadOf, startServe, tempDataDir, verdict, writeDocSection, writeServeConfig, type Spread } from './support.ts';

export interface ReadToolsFigures {
  routes: number;
  calls: number;
  tools: Record<string, Spread & { bytes: number; ratioP50: number; ratioP99: number }>;
  budgetRatio: number;
  pass: boolean;
}

const TOOLS = [
  { key: 'tunnel_ping', tool: 'tunnel_ping', as: 'ms', args: {} },
  { key: 'tunnel_get_status', tool: 'tunnel_get_status', as: 'ms', args: {} },
  { key: 'tunnel_list_cnames (MS, first page of 100)', tool: 'tunnel_list_cnames', as: 'ms', args: {} },
  { key: 'tunnel_list_cnames (PS, first page of 100)', tool: 'tunnel_list_cnames', as: 'ps', args: {} },
  { key: 'tunnel_list_cnames (MS, all in one page)', tool: 'tunnel_list_cnames', as: 'ms', args: { limit: 1000 } },
] as const;

export async function runReadToolsBenchmark(options: { calls?: number; routes?: number } = {}): Promise<ReadToolsFigures> {
  const calls = options.calls ?? 1000;
  const routeCount = options.routes ?? 1000;
  const dir = tempDataDir('read');
  const serve = await startServe(dir.path, await writeServeConfig(dir.path));
  const { db } = openDatabase(serve.info.databasePath);
  try {
    // the first zone refresh also adopts the sandbox's 4 pre-existing tunnel records: let it finish first
    await waitUntil(() => serve.output().includes('"msg":"zones refreshed"') || undefined, 30_000, 'the zones to be refreshed');
    await waitUntil(() => new DomainsRepository(db).findByName('153.se') ?? undefined, 30_000, 'the zones to be in the database');
    seedRoutes(db, routeCount);
    const total = (db.prepare('SELECT COUNT(*) AS n FROM routes').get() as { n: number }).n;

    const ms = new RawMcpClient(serve.info.mcpUrl, serve.info.tokens['meta-supervisor']!);
    const ps = new RawMcpClient(serve.info.mcpUrl, serve.info.tokens.consilio!);
    await ms.initialize();
    await ps.initialize();
    const clientOf = (as: 'ms' | 'ps') => (as === 'ms' ? ms : ps);

    // Paging through the whole ledger must give every route once.
    let seen = 0;
    let cursor: string | null = null;
    do {
      const page = (await ms.callTool('tunnel_list_cnames', cursor === null ? {} : { cursor })) as { count: number; total: number; nextCursor: string | null };
      if (page.total !== total) throw new Error(`tunnel_list_cnames reports a total of ${String(page.total)}, the ledger has ${total}`);
      seen += page.count;
      cursor = page.nextCursor;
    } while (cursor !== null);
    if (seen !== total) throw new Error(`paging tunnel_list_cnames gave ${seen} routes, the ledger has ${total}`);
    const status = await ms.callTool('tunnel_get_status');
    if (status.routes !== total) throw new Error(`tunnel_get_status counts ${String(status.routes)} routes, the ledger has ${total}`);

    const bytes: Record<string, number> = {};
    for (const entry of TOOLS) bytes[entry.key] = JSON.stringify(await clientOf(entry.as).callTool(entry.tool, entry.args)).length;
    // Warm-up: JIT, prepared statements, connection pool.
    for (let i = 0; i < 50; i += 1) for (const entry of TOOLS) await clientOf(entry.as).callTool(entry.tool, entry.args);

    const samples: Record<string, number[]> = Object.fromEntries(TOOLS.map((entry) => [entry.key, [] as number[]]));
    for (let i = 0; i < calls; i += 1) {
      for (const entry of TOOLS) {
        const started = performance.now();
        await clientOf(entry.as).callTool(entry.tool, entry.args);
        samples[entry.key]!.push(performance.now() - started);
      }
    }
    const ping = spreadOf(samples.tunnel_ping!);
    const tools: ReadToolsFigures['tools'] = {};
    for (const entry of TOOLS) {
      const spread = spreadOf(samples[entry.key]!);
      tools[entry.key] = { ...spread, bytes: bytes[entry.key]!, ratioP50: Math.round((spread.p50 / ping.p50) * 100) / 100, ratioP99: Math.round((spread.p99 / ping.p99) * 100) / 100 };
    }
    const budgetRatio = 1.5;
    const pass = tools['tunnel_get_status']!.ratioP99 <= budgetRatio && tools['tunnel_list_cnames (MS, first page of 100)']!.ratioP99 <= budgetRatio;
    return { routes: total, calls, tools, budgetRatio, pass };
  } finally {
    db.close();
    await serve.stop();
    dir.remove();
  }
}

export function renderReadTools(figures: ReadToolsFigures): string {
  const rows = Object.entries(figures.tools).map(([key, t]) => {
    const budget =
      key === 'tunnel_ping' ? 'the no-op' : key.includes('PS') || key.includes('all in one page') ? '(for reference)' : `≤ 1.5 × no-op p99: ${verdict(t.ratioP99 <= figures.budgetRatio)}`;
    return `| ${key} | ${t.p50} | ${t.p90} | ${t.p99} | ${t.max} | ${t.ratioP50} / ${t.ratioP99} | ${t.bytes < 1024 ? `${t.bytes} B` : `${Math.round(t.bytes / 1024)} KiB`} | ${budget} |`;
  });
  return [
    `Budget (docs/design.md, Budgets): MCP read tools (status, list) at 1,000 routes, p99 over loopback HTTP ≤ 1.5 × a no-op tool on the same server. Result: ${verdict(figures.pass)}.`,
    '',
    'Command: `node --import tsx test/bench/mcp-read-tools.ts --write` (also `npm run bench`, `test/bench/mcp-read-tools.bench.ts`).',
    '',
    `Scenario: a real \`tunnel-manager serve\` process in sandbox mode on a fresh data directory. 1,000 active routes are inserted`,
    'into its ledger through `RoutesRepository` on a second connection to the same SQLite file (the rows 1,000 finished sagas leave;',
    `no saga runs), so the ledger holds ${figures.routes} routes (with the 4 the sandbox adopts at start). The benchmark process holds one MCP`,
    'session per principal (meta-supervisor and consilio) and calls the tools with raw JSON-RPC over keep-alive HTTP on 127.0.0.1',
    `(no client-side schema validation, so the time is the server's work plus the round trip), one call at a time, round-robin, ${figures.calls}`,
    'times each after 50 warm-up rounds. Every call goes through the whole server path: bearer token, session, zod input and output',
    'parsing, the handler, and the audit row.',
    '',
    '| tool | p50 ms | p90 ms | p99 ms | max ms | × no-op (p50 / p99) | structured answer (the text block repeats it) | budget |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    machineLine(),
    '',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const callsAt = process.argv.indexOf('--calls');
  const figures = await runReadToolsBenchmark({ calls: callsAt === -1 ? 1000 : Number(process.argv[callsAt + 1]) });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  if (process.argv.includes('--write')) process.stdout.write(`wrote ${writeDocSection('MCP read tools at 1,000 routes', renderReadTools(figures))}\n`);
  process.exit(0);
}
