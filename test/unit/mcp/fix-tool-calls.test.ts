import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ALL_TOOLS } from '../../../src/mcp/tools/index.ts';

/**
 * A fix that names a tool call with arguments (`tunnel_delete_cname { "hostname": "…" }`) is followed as written by
 * an agent: the call must be valid. This reads every such call the sources can produce (in fix texts, messages and
 * the helpers that build them), fills each `${…}` with a sample of the argument it stands for, and validates the
 * arguments against that tool's real input schema. A new fix text with a misspelt argument fails here.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TOOLS = new Map(ALL_TOOLS.map((tool) => [tool.name, tool]));

/** What a `${…}` stands for, by the argument it fills: a value that argument accepts. */
const SAMPLES: Record<string, string | number> = {
  hostname: 'app.153.se',
  port: 3100,
  targetPort: 3100,
  commit: '3f7a6a1',
  subdomain: 'app',
  purpose: 'web',
  project: 'consilio',
};

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

/** The text from the `{` at `start` to its matching `}`, counting `${…}` as nested. */
function balanced(text: string, start: number): string | null {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}') {
      depth--;
      if (depth === 0) return text.slice(start, i + 1);
    } else if (text[i] === '\n') return null;
  }
  return null;
}

/** Replaces each `${…}` by the sample of the argument it is the value of (quoted or not, as written). */
function filled(args: string): { json: string; unknown: string[] } {
  const unknown: string[] = [];
  let out = '';
  let i = 0;
  while (i < args.length) {
    if (args.startsWith('${', i)) {
      const body = balanced(args, i + 1);
      if (body === null) break;
      const key = /"([A-Za-z]+)"\s*:\s*"?$/.exec(out)?.[1];
      const sample = key === undefined ? undefined : SAMPLES[key];
      if (sample === undefined) unknown.push(`${key ?? '(no key)'} = \${${body.slice(1, -1)}}`);
      out += String(sample ?? '');
      i += body.length + 1;
    } else {
      out += args[i];
      i++;
    }
  }
  return { json: out, unknown };
}

interface FoundCall {
  where: string;
  tool: string;
  args: string;
}

function toolCallsInSources(): FoundCall[] {
  const names = [...TOOLS.keys()].join('|');
  const pattern = new RegExp(`\\b(${names})\\s*\\(?\\s*(?=\\{\\s*["}$])`, 'g');
  const found: FoundCall[] = [];
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(pattern)) {
      const start = match.index + match[0].length;
      const args = balanced(text, start);
      const line = text.slice(0, match.index).split('\n').length;
      found.push({ where: `${relative(ROOT, file)}:${line}`, tool: match[1]!, args: args ?? '(unbalanced)' });
    }
  }
  return found;
}

describe('fix texts that name a tool call', () => {
  const calls = toolCallsInSources();

  it('are found in the sources (the scan itself works)', () => {
    const tools = new Set(calls.map((c) => c.tool));
    // The ones this scan was written against; more may come, none may silently vanish from the scan.
    for (const tool of ['tunnel_delete_cname', 'port_allocate', 'port_release', 'tunnel_check_connectivity', 'tunnel_rollback_config']) {
      expect(tools, `no call of ${tool} found: ${JSON.stringify(calls)}`).toContain(tool);
    }
  });

  it('are valid calls of that tool as written', () => {
    const invalid: string[] = [];
    for (const call of calls) {
      const { json, unknown } = filled(call.args);
      if (unknown.length > 0) {
        invalid.push(`${call.where}: ${call.tool} ${call.args}: no sample for ${unknown.join(', ')} (add one to SAMPLES)`);
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(json);
      } catch (error) {
        invalid.push(`${call.where}: ${call.tool} ${call.args}: not JSON as written (${(error as Error).message})`);
        continue;
      }
      const result = TOOLS.get(call.tool)!.input.safeParse(parsed);
      if (!result.success) {
        invalid.push(`${call.where}: ${call.tool} ${json}: ${result.error.issues.map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`).join('; ')}`);
      }
    }
    expect(invalid).toEqual([]);
  });
});
