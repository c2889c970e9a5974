/**
 * The report of a connectivity check (connectivity-check.ts), and the check as it runs inside a container: a
 * busybox script that prints one `@@STEP START END REST` line per step, read back into the same report a check
 * from the host gives.
 */

export type CheckStepName = 'resolve' | 'tcp' | 'http';

export interface CheckStep {
  step: CheckStepName;
  ok: boolean;
  latencyMs: number | null;
  detail: string;
}

export interface ConnectivityReport {
  /** True when an HTTP answer came back from the target. */
  ok: boolean;
  target: string;
  /** `host`, `helper-container` or `exec`. */
  method: 'host' | 'helper-container' | 'exec';
  /** Exactly where the check ran from, in plain words. */
  vantage: string;
  steps: CheckStep[];
  httpStatus: number | null;
  /** TCP connect time (ms), when it connected. */
  latencyMs: number | null;
  /** Granularity of the latencies: 1 ms from the host, 10 ms inside a container (/proc/uptime). */
  latencyResolutionMs: number;
  error: string | null;
}

/** Runs inside busybox with TM_HOST, TM_PORT, TM_URL, TM_HOST_HEADER, TM_TIMEOUT in the environment. */
export const CHECK_SCRIPT = [
  'now() { read up _ < /proc/uptime; echo "$up"; }',
  'is_ip() { case "$1" in *[!0-9.]*) case "$1" in *:*) return 0;; *) return 1;; esac;; *) return 0;; esac; }',
  's=$(now)',
  'if is_ip "$TM_HOST"; then r="ok literal address";',
  'elif awk -v h="$TM_HOST" \'{for(i=2;i<=NF;i++) if($i==h) f=1} END{exit !f}\' /etc/hosts; then r="ok /etc/hosts";',
  'elif nslookup "$TM_HOST" >/dev/null 2>&1; then r="ok DNS";',
  'else r="fail no /etc/hosts entry and DNS has no answer"; fi',
  'echo "@@resolve $s $(now) $r"',
  'case "$r" in fail*) exit 0;; esac',
  's=$(now)',
  'out=$(nc -w "$TM_TIMEOUT" "$TM_HOST" "$TM_PORT" -e true 2>&1); rc=$?',
  'echo "@@tcp $s $(now) $rc $(echo "$out" | tr "\\n" " ")"',
  '[ "$rc" = 0 ] || exit 0',
  's=$(now)',
  'set -- -S -O /dev/null',
  '[ -n "$TM_HOST_HEADER" ] && set -- "$@" --header "Host: $TM_HOST_HEADER"',
  'case "$TM_URL" in https:*) set -- "$@" --no-check-certificate;; esac',
  'out=$(timeout "$TM_TIMEOUT" wget "$@" "$TM_URL" 2>&1); rc=$?',
  'echo "@@http $s $(now) $rc"',
  'echo "$out" | sed "s/^/@@| /"',
].join('\n');

const STEP_LINE = /^@@(resolve|tcp|http) (\S+) (\S+) ?(.*)$/;

function isStepName(value: string | undefined): value is CheckStepName {
  return value === 'resolve' || value === 'tcp' || value === 'http';
}

/** One `@@STEP START END REST` line of the script, with START and END in seconds of /proc/uptime. */
interface StepLine {
  step: CheckStepName;
  latencyMs: number;
  rest: string;
}

function stepLine(line: string): StepLine | null {
  const [, step, start, end, rest] = STEP_LINE.exec(line) ?? [];
  if (!isStepName(step) || start === undefined || end === undefined) return null;
  return { step, latencyMs: Math.round((Number(end) - Number(start)) * 1000), rest: rest ?? '' };
}

/** What one step line says: the step, the error it reports (null when it passed) and, for http, the status. */
type StepResult = { step: CheckStep; error: string | null; httpStatus: number | null };

function resolveResult(line: StepLine, target: string): StepResult {
  const ok = line.rest.startsWith('ok');
  const host = new URL(target).hostname;
  return {
    step: { step: 'resolve', ok, latencyMs: line.latencyMs, detail: `${host}: ${line.rest.replace(/^(ok|fail) /, '')}` },
    error: ok ? null : `${host} does not resolve from cloudflared's network namespace`,
    httpStatus: null,
  };
}

function tcpResult(line: StepLine): StepResult {
  const [code, ...words] = line.rest.split(' ');
  const ok = code === '0';
  const detail = ok ? 'TCP connect succeeded' : `TCP connect failed: ${words.join(' ').trim() || `nc exited ${code}`}`;
  return { step: { step: 'tcp', ok, latencyMs: line.latencyMs, detail }, error: ok ? null : detail, httpStatus: null };
}

function httpResult(line: StepLine, target: string, httpLines: string[]): StepResult {
  const statusLine = httpLines.map((l) => /HTTP\/\d(?:\.\d)? (\d{3})/.exec(l)).find((m) => m !== null);
  const httpStatus = statusLine ? Number(statusLine[1]) : null;
  const detail = httpStatus !== null
    ? `GET ${target} answered ${httpStatus}`
    : `GET ${target} failed: ${httpLines.map((l) => l.trim()).filter((l) => l !== '').join(' ') || `wget exited ${line.rest}`}`;
  return { step: { step: 'http', ok: httpStatus !== null, latencyMs: line.latencyMs, detail }, error: httpStatus === null ? detail : null, httpStatus };
}

export function parseScriptOutput(output: string, target: string, method: ConnectivityReport['method'], vantage: string): ConnectivityReport {
  const steps: CheckStep[] = [];
  let httpStatus: number | null = null;
  let error: string | null = null;
  const lines = output.split('\n');
  const httpLines = lines.filter((line) => line.startsWith('@@| ')).map((line) => line.slice(4));
  for (const line of lines) {
    const parsed = stepLine(line);
    if (parsed === null) continue;
    const result =
      parsed.step === 'resolve' ? resolveResult(parsed, target) : parsed.step === 'tcp' ? tcpResult(parsed) : httpResult(parsed, target, httpLines);
    steps.push(result.step);
    if (result.error !== null) error = result.error;
    if (parsed.step === 'http') httpStatus = result.httpStatus;
  }
  if (steps.length === 0) error = `the check produced no result: ${output.trim().slice(0, 300) || 'no output'}`;
  return {
    ok: httpStatus !== null,
    target,
    method,
    vantage,
    steps,
    httpStatus,
    latencyMs: steps.find((s) => s.step === 'tcp' && s.ok)?.latencyMs ?? null,
    latencyResolutionMs: 10,
    error,
  };
}
