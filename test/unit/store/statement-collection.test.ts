import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/standin-cloudflared.ts';

/**
 * Statements the garbage collector takes while no JavaScript runs must not kill the process. better-sqlite3 12
 * aborted there on Node 24 (`Statement::~Statement` → `RemoveEnvironmentCleanupHook`: "Assertion failed: (env) !=
 * nullptr"): the worker crashes of the suite, and a long-running manager several times an hour. better-sqlite3 13
 * (Node-API) has no such path.
 *
 * The child opens the store as the service does and, tick after tick, prepares statements and keeps them for a few
 * ticks (with some other garbage), so they reach the old generation and are collected by the major collections V8
 * finishes from a task on the event loop, outside any JavaScript; it ends after 3 of them. With better-sqlite3 12 on
 * Node 24 it aborted in every one of 6 tries, within 0.2-0.8 s.
 */
const CHILD = `
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { openDatabase } from './src/store/database.ts';
const { db } = openDatabase(':memory:');
let majors = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors += 1;
}).observe({ entryTypes: ['gc'] });
const held = [];
const giveUp = setTimeout(() => {
  process.stdout.write('only ' + majors + ' major collections in 30 s\\n');
  process.exit(3);
}, 30000);
const tick = () => {
  const batch = [Array.from({ length: 20000 }, (_, i) => ({ i, text: 'filler ' + i }))];
  for (let i = 0; i < 1000; i += 1) {
    const statement = db.prepare('SELECT ' + i + ' AS n');
    statement.get();
    batch.push(statement);
  }
  held.push(batch);
  if (held.length > 3) held.shift();
  if (majors < 3) {
    setTimeout(tick, 20);
    return;
  }
  clearTimeout(giveUp);
  held.length = 0;
  db.close();
  process.stdout.write('collected ' + majors + ' times\\n');
};
tick();
`;

describe('prepared statements and the garbage collector', () => {
  it('survives V8 collecting statements in major collections outside JavaScript', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    expect({ code, signal, output: output.slice(-1500) }).toEqual({ code: 0, signal: null, output: expect.stringMatching(/^collected \d+ times\n$/) as unknown });
  }, 60_000);
});
