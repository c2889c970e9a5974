#!/usr/bin/env node
// Entry point of the `tunnel-manager` command: runs the JavaScript that `npm run build` made from the sources
// (dist/, built by `npm ci` through the `prepare` script; ADR 0004). No TypeScript loader at run time.
import { existsSync } from 'node:fs';
import { tuneServeRuntime } from './runtime-tuning.js';

tuneServeRuntime(process.argv.slice(2));
const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('tunnel-manager: dist/cli.js is missing: this checkout was not built.\nfix: run `npm ci` (it builds), or `npm run build`.\n');
  process.exit(1);
}
const { main } = await import(cli.href);
const args = process.argv.slice(2);
const code = await main(args);
process.exitCode = code;
// Long-running commands end explicitly: their servers and timers are closed, but a stray handle
// must not keep a stopped service alive. Short commands end naturally, so piped output is flushed.
if (args[0] === 'serve' || args[0] === 'sandbox-cloudflared') process.exit(code);
