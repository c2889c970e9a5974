import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MACHINES } from '../../machines/index.ts';
import { machineToMermaid } from '../app/operations/machine-diagram.ts';
import { machineConfigOf } from '../app/operations/machine-export.ts';
import { renderMachinesDoc } from '../app/operations/machines-doc.ts';
import { EXIT, print, UsageError, type Command } from './options.ts';

type Format = 'json' | 'mermaid';

function formatOf(format: string | undefined): Format {
  const chosen = format ?? 'json';
  if (chosen !== 'json' && chosen !== 'mermaid') throw new UsageError(`--format must be json or mermaid, not ${JSON.stringify(chosen)}`);
  return chosen;
}

function rendered(format: Format): { name: string; text: string }[] {
  return Object.entries(MACHINES).map(([name, machine]) => ({
    name,
    text: format === 'json' ? `${JSON.stringify(machineConfigOf(machine), null, 2)}\n` : machineToMermaid(machine),
  }));
}

/** `tunnel-manager machines export --format json|mermaid [--out DIR] [--docs FILE]`. */
export const machines: Command = ([sub], options) => {
  if (sub !== 'export') throw new UsageError('usage: tunnel-manager machines export --format json|mermaid [--out DIR] [--docs FILE]');
  if (options.docs !== undefined) {
    writeFileSync(options.docs, renderMachinesDoc());
    print(`wrote ${options.docs}`);
    return Promise.resolve(EXIT.ok);
  }
  const format = formatOf(options.format);
  if (options.out !== undefined) {
    mkdirSync(options.out, { recursive: true });
    for (const { name, text } of rendered(format)) {
      const file = join(options.out, `${name}.machine.${format === 'json' ? 'json' : 'mmd'}`);
      writeFileSync(file, text);
      print(`wrote ${file}`);
    }
  } else if (format === 'json') {
    print(JSON.stringify(Object.fromEntries(Object.entries(MACHINES).map(([name, machine]) => [name, machineConfigOf(machine)])), null, 2));
  } else {
    for (const { name, text } of rendered(format)) print(`%% ${name}\n${text}`);
  }
  return Promise.resolve(EXIT.ok);
};
