/**
 * A reader for the Prometheus text exposition format (version 0.0.4), enough for cloudflared's /metrics:
 * `# HELP` / `# TYPE` comments, samples `name{label="value",…} value [timestamp]`, escaped label values,
 * and the special values `+Inf`, `-Inf` and `NaN`. Lines it cannot read are reported, never guessed at.
 */
export interface PrometheusSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface PrometheusParseResult {
  samples: PrometheusSample[];
  /** Metric name → type from `# TYPE` lines (counter, gauge, histogram, summary, untyped). */
  types: Record<string, string>;
  /** 1-based line numbers with what was wrong, for lines that are neither comments nor samples. */
  invalidLines: { line: number; text: string; problem: string }[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(text: string): number | null {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return null;
  return Number(text);
}

/** Reads the escaped text of a label value from `start` (just after its opening quote) to its closing quote. */
function readLabelValue(line: string, start: number, label: string): { value: string; end: number } | string {
  let value = '';
  let i = start;
  for (;;) {
    const char = line[i];
    if (char === undefined) return `unterminated value for label ${label}`;
    if (char === '"') return { value, end: i + 1 };
    if (char === '\\') {
      const next = line[i + 1];
      value += next === 'n' ? '\n' : (next ?? '');
      i += 2;
      continue;
    }
    value += char;
    i += 1;
  }
}

/** Reads `{a="1",b="2"}` starting at `start` (the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } | string {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i += 1;
    if (line[i] === '}') return { labels, end: i + 1 };
    const name = LABEL_NAME.exec(line.slice(i));
    if (name === null) return `expected a label name at column ${i + 1}`;
    i += name[0].length;
    while (line[i] === ' ') i += 1;
    if (line[i] !== '=') return `expected "=" after label ${name[0]}`;
    i += 1;
    while (line[i] === ' ') i += 1;
    if (line[i] !== '"') return `expected a quoted value for label ${name[0]}`;
    const value = readLabelValue(line, i + 1, name[0]);
    if (typeof value === 'string') return value;
    labels[name[0]] = value.value;
    i = value.end;
  }
}

export function parsePrometheusText(text: string): PrometheusParseResult {
  const result: PrometheusParseResult = { samples: [], types: {}, invalidLines: [] };
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      const type = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      const [, metric, kind] = type ?? [];
      if (metric !== undefined && kind !== undefined) result.types[metric] = kind;
      return;
    }
    const fail = (problem: string): void => {
      result.invalidLines.push({ line: index + 1, text: raw, problem });
    };
    const name = METRIC_NAME.exec(line);
    if (name === null) return fail('expected a metric name');
    let rest = line.slice(name[0].length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      const parsed = parseLabels(rest, 0);
      if (typeof parsed === 'string') return fail(parsed);
      labels = parsed.labels;
      rest = rest.slice(parsed.end);
    }
    const fields = rest.trim().split(/\s+/);
    const value = parseValue(fields[0] ?? '');
    if (value === null) return fail(`expected a number, found ${JSON.stringify(fields[0] ?? '')}`);
    const sample: PrometheusSample = { name: name[0], labels, value };
    if (fields[1] !== undefined) {
      const timestamp = Number(fields[1]);
      if (!Number.isInteger(timestamp)) return fail(`expected an integer timestamp, found ${JSON.stringify(fields[1])}`);
      sample.timestampMs = timestamp;
    }
    result.samples.push(sample);
  });
  return result;
}

/**
 * The sum of every sample named `name` whose labels include `where` (all label series of a counter),
 * or null when there is no such sample: absent is not the same as zero.
 */
export function sumSamples(samples: readonly PrometheusSample[], name: string, where: Record<string, string> = {}): number | null {
  let total: number | null = null;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (!Object.entries(where).every(([key, value]) => sample.labels[key] === value)) continue;
    total = (total ?? 0) + sample.value;
  }
  return total;
}
