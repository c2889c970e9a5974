#!/usr/bin/env node
// Entry point of the `tunnel-manager` command: loads the TypeScript sources through tsx,
// so the command works right after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
