/**
 * The blue-green switch under traffic (issue 24): the whole manager in sandbox mode (startTestService), one project
 * (consilio) with two origins in its range, blue on port A and green on port B, and a route `app.153.se` published to
 * A. Keep-alive clients send requests through the sandbox edge back to back while `tunnel_update_cname` over MCP moves
 * the route A → B → A … N times. Per switch: the tool call's duration, the time from the call's start until the first
 * answer from the new origin, the failed requests (non-200 or a connection error), and whether the next request after
 * the call's answer reaches the new origin (a fresh connection) — and whether any request the clients sent after the
 * answer was still served by the old one.
 *
 * With the stand-in cloudflared, and again with the real one when there is one (TM_CLOUDFLARED or PATH, as
 * test/bench/real-cloudflared.ts finds it; TM_CLOUDFLARED=standin runs the stand-in only).
 *
 *   node --import tsx test/bench/blue-green.ts [--switches 10] [--write]
 *
 * `--write` replaces the "Blue-green switch (tunnel_update_cname) under traffic" section of docs/performance.md.
 * test/bench/blue-green.bench.ts runs the same under `npm run bench`.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { publishBlueGreen, type BlueGreen } from '../helpers/blue-green.ts';
import { waitUntil } from '../helpers/cli.ts';
import { REAL_CLOUDFLARED } from '../helpers/real-cloudflared.ts';
import { call, mcpClient, startTestService, viaEdge } from '../helpers/service.ts';
import { edgeTraffic, type EdgeAnswer } from '../helpers/traffic.ts';
import type { SandboxEdge } from '../../src/sandbox/edge/edge.ts';
import { isMain, machineLine, spreadOf, verdict, writeDocSection, type Spread } from './support.ts';

export const SECTION = 'Blue-green switch (tunnel_update_cname) under traffic';

export interface BlueGreenFigures {
  /** `stand-in` or the real binary's version. */
  cloudflared: string;
  switches: number;
  clients: number;
  requests: number;
  requestsPerSecond: number;
  failed: number;
  failures: string[];
  failedPerSwitch: number[];
  callMs: Spread;
  firstNewAnswerMs: Spread;
  /** The next request after the call's answer (a fresh connection) did not reach the new origin. */
  nextRequestViolations: number;
  /** Requests the clients sent after the call's answer that the old origin served. */
  oldOriginAfterAnswer: number;
  /** The first 10 of them: which switch, when sent and answered relative to the call's answer. */
  oldOriginAfterAnswerDetails: string[];
  /** Switches whose call answered while the sandbox edge still sent requests to the old cloudflared too. */
  oldConnectorAtAnswer: number;
  pass: boolean;
}

interface Switch {
  to: 'blue' | 'green';
  started: number;
  answered: number;
  /** Connectors (cloudflared processes) the sandbox edge still sent requests to when the call answered: 1 is the new one alone. */
  connectorsAtAnswer: number;
}

type Answer = EdgeAnswer & { origin: 'blue' | 'green' | null };

/** The manager's configuration for each cloudflared: as the e2e tests start it. */
function serviceOverrides(binary: string | null): Record<string, unknown> {
  if (binary === null) return { reload: { drainGraceSeconds: 1 } };
  return {
    cloudflared: { metricsAddress: '127.0.0.1:0', command: [binary] },
    restart: { startTimeoutSeconds: 30, stopGraceSeconds: 10 },
    // cloudflared's own default grace period: the old replica drains in the background, nothing waits for it.
    reload: { drainGraceSeconds: 30, replicaReadyTimeoutSeconds: 30 },
  };
}

/** Each switch moves the route and checks the next request; then waits for `settle` answers from the new origin. */
async function switchBackAndForth(client: Client, pair: BlueGreen, edge: SandboxEdge, answers: Answer[], switches: number, settle: number): Promise<{ done: Switch[]; violations: number }> {
  const done: Switch[] = [];
  let violations = 0;
  for (let i = 0; i < switches; i += 1) {
    const to = i % 2 === 0 ? 'green' : 'blue';
    const started = performance.now();
    const moved = await call(client, 'tunnel_update_cname', { hostname: pair.hostname, targetPort: pair[to] });
    const answered = performance.now();
    const connectorsAtAnswer = edge.connectors().filter((connector) => connector.connections > 0).length;
    if (moved.isError) throw new Error(`switch ${i + 1} to ${to}: ${JSON.stringify(moved.data)}`);
    const next = await viaEdge(`http://${edge.address}`, pair.hostname);
    if (next.status !== 200 || pair.originOf(next.body) !== to) violations += 1;
    done.push({ to, started, answered, connectorsAtAnswer });
    const seen = answers.length;
    await waitUntil(() => (answers.slice(seen).filter((answer) => answer.origin === to).length >= settle ? true : undefined), 30_000, `${settle} answers from ${to}`, 10);
  }
  return { done, violations };
}

/** One run: a fresh manager with `binary` (null: the stand-in), the switches under traffic, the figures. */
export async function runBlueGreenBenchmark(options: { binary?: string | null; switches?: number; clients?: number; settle?: number } = {}): Promise<BlueGreenFigures> {
  const binary = options.binary ?? null;
  const switches = options.switches ?? 10;
  const clients = options.clients ?? 4;
  const env = await startTestService(serviceOverrides(binary));
  const info = env.service.sandboxInfo!;
  const consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  let pair: BlueGreen | undefined;
  try {
    pair = await publishBlueGreen(env, consilio, { project: 'consilio', subdomain: 'app' });
    const originOf = pair.originOf;
    const answers: Answer[] = [];
    const traffic = edgeTraffic({ port: Number(new URL(info.edgeUrl).port) }, pair.hostname, { clients, keepAlive: true, onAnswer: (answer) => answers.push({ ...answer, origin: originOf(answer.body) }) });
    const started = performance.now();
    await waitUntil(() => (answers.filter((answer) => answer.origin === 'blue').length >= 100 ? true : undefined), 30_000, 'traffic to flow through blue', 10);
    const { done, violations } = await switchBackAndForth(consilio, pair, env.service.sandbox!.edge, answers, switches, options.settle ?? 100);
    const result = await traffic.stop();
    const elapsed = (performance.now() - started) / 1000;
    const figures: BlueGreenFigures = {
      cloudflared: binary === null ? 'stand-in' : `cloudflared ${info.cloudflared.version}`,
      switches,
      clients,
      requests: result.requests,
      requestsPerSecond: Math.round(result.requests / elapsed),
      failed: result.failures.length,
      failures: describeFailures(done, answers),
      ...perSwitch(done, answers),
      nextRequestViolations: violations,
      oldConnectorAtAnswer: done.filter((one) => one.connectorsAtAnswer > 1).length,
      pass: false,
    };
    figures.pass = passed(figures);
    return figures;
  } finally {
    await consilio.close();
    await env.stop();
    await pair?.close();
  }
}

/** The per-switch figures: each switch's window runs from its call's start to the next call's start. */
function perSwitch(done: Switch[], answers: Answer[]): Pick<BlueGreenFigures, 'failedPerSwitch' | 'callMs' | 'firstNewAnswerMs' | 'oldOriginAfterAnswer' | 'oldOriginAfterAnswerDetails'> {
  const windows = done.map((one, i) => ({ ...one, until: done[i + 1]?.started ?? Infinity }));
  const inWindow = (window: (typeof windows)[number]) => answers.filter((answer) => answer.at >= window.started && answer.at < window.until);
  return {
    failedPerSwitch: windows.map((window) => inWindow(window).filter((answer) => answer.status !== 200).length),
    callMs: spreadOf(done.map((one) => one.answered - one.started)),
    firstNewAnswerMs: spreadOf(windows.map((window) => (inWindow(window).find((answer) => answer.origin === window.to)?.at ?? Infinity) - window.started)),
    ...staleAnswers(windows, answers),
  };
}

/** Requests sent after a call's answer (before the next call) that the old origin served, and when. */
function staleAnswers(windows: (Switch & { until: number })[], answers: Answer[]): Pick<BlueGreenFigures, 'oldOriginAfterAnswer' | 'oldOriginAfterAnswerDetails'> {
  const details = windows.flatMap((window, i) =>
    answers
      .filter((answer) => answer.sentAt >= window.answered && answer.sentAt < window.until && answer.origin !== null && answer.origin !== window.to)
      .map((answer) => `switch ${i + 1} (to ${window.to}): sent ${Math.round(answer.sentAt - window.answered)} ms after the call's answer, answered by ${answer.origin} ${Math.round(answer.at - window.answered)} ms after it`),
  );
  return { oldOriginAfterAnswer: details.length, oldOriginAfterAnswerDetails: details.slice(0, 10) };
}

/** The first 10 failures: what came back (the body's start), and when, relative to the switch whose window holds it. */
function describeFailures(done: Switch[], answers: Answer[]): string[] {
  return answers
    .filter((answer) => answer.status !== 200)
    .slice(0, 10)
    .map((answer) => {
      const index = done.findLastIndex((one) => one.started <= answer.at);
      const what = answer.status === 0 ? 'connection error' : `HTTP ${answer.status} ${JSON.stringify(answer.body.slice(0, 120))}`;
      if (index === -1) return `${what}, before the first switch`;
      const one = done[index]!;
      return `${what}, sent ${Math.round(answer.sentAt - one.started)} ms and answered ${Math.round(answer.at - one.started)} ms after switch ${index + 1} (to ${one.to}) started; its call answered after ${Math.round(one.answered - one.started)} ms`;
    });
}

export function passed(figures: BlueGreenFigures): boolean {
  return figures.failed === 0 && figures.nextRequestViolations === 0 && figures.oldOriginAfterAnswer === 0;
}

export function renderBlueGreen(runs: BlueGreenFigures[], switches: number): string {
  const ms = (s: Spread): string => `${Math.round(s.min)} / ${Math.round(s.p50)} / ${Math.round(s.max)}`;
  const row = (figure: string, value: (run: BlueGreenFigures) => string | number, target = ''): string => `| ${figure} | ${runs.map(value).join(' | ')} | ${target} |`;
  const real = runs.some((run) => run.cloudflared !== 'stand-in');
  return [
    `Scenario (\`${real ? `TM_CLOUDFLARED=${REAL_CLOUDFLARED ?? '/path/to/cloudflared'} ` : ''}node --import tsx test/bench/blue-green.ts --switches ${switches} --write\`;`,
    'without TM_CLOUDFLARED or cloudflared on PATH, the stand-in only; also `npm run bench`): the whole manager in sandbox',
    'mode (the e2e tests\' `startTestService`: the Cloudflare API emulator, the sandbox edge, SQLite, MCP over HTTP), one',
    'project with two origins in its range, blue on port A and green on port B, and a route `app.153.se` published to A.',
    'Four keep-alive clients send GET requests through the edge',
    `back to back while \`tunnel_update_cname\` over MCP moves the route A → B → A … ${switches} times; after each call's answer`,
    'one request on a fresh connection must reach the new origin, then the next switch waits for 100 answers from it. A',
    "switch's window runs from its call's start to the next call's start. With the stand-in cloudflared, and with the real",
    "one (the manager's replica reload: the new replica registers, then the old one unregisters and drains in the background).",
    '',
    `| figure | ${runs.map((run) => run.cloudflared).join(' | ')} | target |`,
    `| --- | ${runs.map(() => '---').join(' | ')} | --- |`,
    row('requests through the edge (requests/s)', (run) => `${run.requests} (${run.requestsPerSecond}/s)`),
    row('failed requests (non-200 or connection error), all', (run) => run.failed, '0'),
    row('failed requests per switch', (run) => run.failedPerSwitch.join(', '), '0 each'),
    row('`tunnel_update_cname` call, ms, min / p50 / max', (run) => ms(run.callMs)),
    row("call's start → first answer from the new origin, ms, min / p50 / max", (run) => ms(run.firstNewAnswerMs)),
    row("next request after the call's answer not on the new origin", (run) => `${run.nextRequestViolations} of ${run.switches}`, '0'),
    row("requests sent after the call's answer that the old origin served", (run) => run.oldOriginAfterAnswer, '0'),
    row('switches whose call answered while the edge still sent requests to the old cloudflared', (run) => `${run.oldConnectorAtAnswer} of ${run.switches}`),
    row('verdict', (run) => verdict(passed(run))),
    '',
    machineLine(),
    ...(real ? [] : ['The real cloudflared was not measured in this run (no TM_CLOUDFLARED and no cloudflared on PATH).']),
    '',
    'What the table of one run does not show: over 27 runs of 10 or 20 switches on the real cloudflared (480 switches,',
    'the same day), in 6 switches 1 or 2 requests that the clients sent 12 to 68 ms **after** the call had answered were',
    'still served by the old origin (HTTP 200, not a failure; the fresh-connection request right after the answer always',
    'reached the new one). The cause is cloudflared, reproduced without the manager: a cloudflared stopped (SIGTERM) less',
    'than about 3 s after it started still opens the connections it had not opened yet (one a second, up to four), and',
    'each of them registers with the edge and takes requests for about 2 ms before it unregisters. The reload counts the',
    "old replica as gone once its `/ready` says 0 connections, which it does at once; a replica that young is what a",
    'switch replaces when it comes within seconds of the previous reload, as here (a switch every 0.3–0.8 s). Also, the',
    'count sees only the previous replica: a late connection of the one before it serves the origin the route has just',
    'moved back to (A → B → A), which looks like a new answer, and the "first answer from the new origin" may then be early.',
    "The stand-in opens all its connections at once and showed none of this. The first `npx vitest bench` run of this file,",
    'before the benchmark described its failures, counted a failed request (on the real cloudflared, it seems); none of the',
    'more than 500 switches since had one.',
    '',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const at = process.argv.indexOf('--switches');
  const switches = at === -1 ? 10 : Number(process.argv[at + 1]);
  const runs: BlueGreenFigures[] = [];
  for (const binary of REAL_CLOUDFLARED === null ? [null] : [null, REAL_CLOUDFLARED]) {
    const figures = await runBlueGreenBenchmark({ binary, switches });
    console.log(JSON.stringify(figures, null, 2));
    runs.push(figures);
  }
  if (process.argv.includes('--write')) console.log(`wrote ${writeDocSection(SECTION, renderBlueGreen(runs, switches))}`);
  process.exit(runs.every((run) => run.pass) ? 0 : 1);
}
