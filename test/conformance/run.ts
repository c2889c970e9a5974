/**
 * Runs the MCP conformance suite's server scenarios against `tunnel-manager serve` (sandbox) and prints one line per
 * scenario. The suite cannot send a bearer token, so it talks to a loopback proxy that adds the meta-supervisor's
 * token and nothing else: Host and Origin reach the server as the suite sent them (the proxy's own loopback names, on
 * the proxy's port), so the DNS rebinding scenario meets the server's own checks, both halves.
 *
 *   node --import tsx test/conformance/run.ts [--out DIR] [--scenario NAME] [--applicable]
 *
 * `--applicable` runs only the scenarios that apply to a server without prompts, completions, sampling, elicitation
 * or the suite's fixture tools and resources (`APPLICABLE` below, with why each other one does not apply in
 * docs/mcp-tools.md), and exits 1 unless every one of them passes (warnings are reported, not failures): what
 * .ci/run runs.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startServe, tempDataDir, writeServeConfig } from '../bench/support.ts';

/** The scenarios that apply to Tunnel Manager (no prompts, completions, sampling, elicitation or fixture tools). */
export const APPLICABLE = [
  'server-initialize',
  'ping',
  'logging-set-level',
  'tools-list',
  'resources-list',
  'server-sse-multiple-streams',
  'server-sse-polling',
  'dns-rebinding-protection',
];

const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const scenarioAt = args.indexOf('--scenario');
const applicableOnly = args.includes('--applicable');
const dir = tempDataDir('conformance');
const out = outAt >= 0 ? (args[outAt + 1] as string) : join(dir.path, 'results');
mkdirSync(out, { recursive: true });

const serve = await startServe(dir.path, await writeServeConfig(dir.path));
const target = new URL(serve.info.mcpUrl);
const token = serve.info.tokens['meta-supervisor'] as string;

const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
  const upstream = request(
    { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, authorization: `Bearer ${token}` } },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${target.pathname}`;

/** Runs the suite once (one scenario, or all); resolves when it exits. */
function runSuite(scenario: string | null): Promise<void> {
  const suite = ['--suite', 'all', ...(scenario !== null ? ['--scenario', scenario] : [])];
  // Spawned, not run synchronously: the proxy lives in this process and must keep answering meanwhile. A failing
  // scenario makes the suite exit non-zero; the results read below say which.
  const suiteRun = spawn('npx', ['-y', '-p', 'node@22', '-p', '@modelcontextprotocol/conformance@latest', 'conformance', 'server', '--url', proxyUrl, '-o', out, ...suite], {
    stdio: 'inherit',
  });
  return new Promise((resolve) => suiteRun.once('exit', () => resolve()));
}

interface Check {
  id: string;
  status: string;
}

/** Each scenario's checks, from the result files (`server-<scenario>-<time>/checks.json`). */
function results(): Map<string, Check[]> {
  const byScenario = new Map<string, Check[]>();
  for (const entry of readdirSync(out, { recursive: true }).map(String).filter((name) => name.endsWith('checks.json'))) {
    const scenario = /server-(.+)-\d{4}-\d{2}-\d{2}T/.exec(entry)?.[1] ?? entry;
    byScenario.set(scenario, JSON.parse(readFileSync(join(out, entry), 'utf8')) as Check[]);
  }
  return byScenario;
}

let failed = false;
try {
  if (applicableOnly) for (const scenario of APPLICABLE) await runSuite(scenario);
  else await runSuite(scenarioAt >= 0 ? (args[scenarioAt + 1] as string) : null);
  const found = results();
  for (const [scenario, checks] of [...found.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const count = (status: string) => checks.filter((check) => check.status === status).length;
    const verdict = count('FAILURE') > 0 ? 'fail' : count('WARNING') > 0 ? 'warnings' : 'pass';
    console.log(`${scenario}: ${verdict} (${count('SUCCESS')} passed, ${count('FAILURE')} failed, ${count('WARNING')} warnings)`);
    for (const check of checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')) console.log(`  ${check.status} ${check.id}`);
  }
  if (applicableOnly) {
    for (const scenario of APPLICABLE) {
      const checks = found.get(scenario);
      if (checks === undefined || checks.some((check) => check.status === 'FAILURE')) {
        console.log(`conformance: ${scenario} ${checks === undefined ? 'did not run' : 'failed'}`);
        failed = true;
      }
    }
    if (!failed) console.log(`conformance: all ${APPLICABLE.length} applicable scenarios pass`);
  }
} finally {
  proxy.close();
  await serve.stop();
  if (outAt < 0) dir.remove();
}
process.exitCode = failed ? 1 : 0;
