/**
 * Runs the MCP conformance suite's server scenarios against `tunnel-manager serve` (sandbox) and prints one line per
 * scenario. The suite cannot send a bearer token, so it talks to a loopback proxy that adds the meta-supervisor's
 * token and rewrites the proxy's own Host/Origin to the server's (a foreign Host or Origin is passed through as sent,
 * so the DNS rebinding scenario still meets the server's own checks).
 *
 *   node --import tsx test/conformance/run.ts [--out DIR] [--scenario NAME]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startServe, tempDataDir, writeServeConfig } from '../bench/support.ts';

const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const scenarioAt = args.indexOf('--scenario');
const dir = tempDataDir('conformance');
const out = outAt >= 0 ? (args[outAt + 1] as string) : join(dir.path, 'results');
mkdirSync(out, { recursive: true });

const serve = await startServe(dir.path, await writeServeConfig(dir.path));
const target = new URL(serve.info.mcpUrl);
const token = serve.info.tokens['meta-supervisor'] as string;

const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
  const own = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const headers = { ...req.headers, authorization: `Bearer ${token}` };
  if (headers.host === own) headers.host = target.host;
  if (headers.origin === `http://${own}`) headers.origin = target.origin;
  const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${target.pathname}`;

try {
  const suite = ['--suite', 'all', ...(scenarioAt >= 0 ? ['--scenario', args[scenarioAt + 1] as string] : [])];
  // Spawned, not run synchronously: the proxy lives in this process and must keep answering meanwhile. A failing
  // scenario makes the suite exit non-zero; the results below say which.
  const suiteRun = spawn('npx', ['-y', '-p', 'node@22', '-p', '@modelcontextprotocol/conformance@latest', 'conformance', 'server', '--url', proxyUrl, '-o', out, ...suite], {
    stdio: 'inherit',
  });
  await new Promise((resolve) => suiteRun.once('exit', resolve));
  for (const entry of readdirSync(out, { recursive: true }).map(String).filter((name) => name.endsWith('.json'))) {
    console.log(`${entry}: ${readFileSync(join(out, entry), 'utf8').slice(0, 200).replace(/\s+/g, ' ')}`);
  }
} finally {
  proxy.close();
  await serve.stop();
  if (outAt < 0) dir.remove();
}
