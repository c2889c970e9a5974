#!/usr/bin/env node
// Entry point of the `tunnel-manager` command: loads the TypeScript sources through tsx,
// so the command works right after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
const args = process.argv.slice(2);
const code = await main(args);
process.exitCode = code;
// Long-running commands end explicitly: their servers and timers are closed, but a stray handle
// must not keep a stopped service alive. Short commands end naturally, so piped output is flushed.
if (args[0] === 'serve' || args[0] === 'sandbox-cloudflared') process.exit(code);
