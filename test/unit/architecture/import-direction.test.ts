import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Imports point one way (docs/architecture.md, "Layout"):
 *
 *   shared leaves, machines  ←  src/store  ←  adapters  ←  src/sandbox, src/contract  ←  src/app  ←  src/mcp  ←  src/root  ←  src/cli.ts, src/commands
 *
 * Every source file's relative imports (static, `export … from`, `import type` and dynamic `import()`) are read
 * with the TypeScript scanner and checked against the table below; a failure names the file, the import and the rule.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

type Layer = 'shared' | 'machines' | 'store' | 'adapter' | 'sandbox' | 'contract' | 'app' | 'mcp' | 'root' | 'cli';

/** Which layer each area belongs to. An area is a folder of src/ (or machines/, a shared file, the CLI). */
const LAYER_OF_AREA: Record<string, Layer> = {
  shared: 'shared',
  machines: 'machines',
  store: 'store',
  cloudflare: 'adapter',
  cloudflared: 'adapter',
  docker: 'adapter',
  ports: 'adapter',
  secrets: 'adapter',
  sandbox: 'sandbox',
  contract: 'contract',
  app: 'app',
  mcp: 'mcp',
  root: 'root',
  commands: 'cli',
  cli: 'cli',
};

/** What a layer may import besides its own area, and why. Adapters never import one another. */
const RULES: Record<Layer, { mayImport: Layer[]; rule: string }> = {
  shared: { mayImport: ['machines'], rule: 'a shared leaf (a file directly in src/) imports only packages, other shared leaves and machines (pure, they import nothing)' },
  machines: { mayImport: [], rule: 'machines are pure: they import nothing from src/' },
  store: { mayImport: ['shared', 'machines'], rule: 'the store sits under the adapters: it imports no adapter and nothing above' },
  adapter: {
    mayImport: ['shared', 'machines', 'store'],
    rule: 'an adapter imports the store, machines and shared leaves, never another adapter or anything above (move a shared type to a shared leaf)',
  },
  sandbox: { mayImport: ['shared', 'machines', 'adapter'], rule: 'the sandbox stands in for outside programs: it may reuse adapters, nothing above them' },
  contract: { mayImport: ['shared', 'machines', 'store', 'adapter'], rule: 'the tool contract sits under src/app: it may not import the app, MCP or the CLI' },
  app: { mayImport: ['shared', 'machines', 'store', 'adapter', 'sandbox', 'contract'], rule: 'src/app sits under src/mcp and the composition root: it may not import them' },
  mcp: { mayImport: ['shared', 'machines', 'store', 'adapter', 'sandbox', 'contract', 'app'], rule: 'src/mcp sits under the composition root: it may not import src/root or the CLI' },
  root: { mayImport: ['shared', 'machines', 'store', 'adapter', 'sandbox', 'contract', 'app', 'mcp'], rule: 'the composition root wires everything below it and is started only by the CLI' },
  cli: { mayImport: ['shared', 'machines', 'store', 'adapter', 'sandbox', 'contract', 'app', 'mcp', 'root', 'cli'], rule: 'the CLI is the top: it may import everything' },
};

/** The area of a repository path (posix, relative to the root), or null for a file outside src/ and machines/. */
export function areaOf(path: string): string | null {
  const parts = path.split('/');
  if (parts[0] === 'machines') return 'machines';
  if (parts[0] !== 'src') return null;
  if (parts.length === 2) return parts[1] === 'cli.ts' ? 'cli' : 'shared';
  return parts[1] ?? null;
}

/** Why `from` may not import `to` (both repository paths), or null when it may. */
export function violation(from: string, to: string): string | null {
  const fromArea = areaOf(from);
  const toArea = areaOf(to);
  if (fromArea === null) return null;
  if (toArea === null) return `imports ${to}, outside src/ and machines/`;
  const fromLayer = LAYER_OF_AREA[fromArea];
  const toLayer = LAYER_OF_AREA[toArea];
  if (fromLayer === undefined || toLayer === undefined) {
    return `src/${fromLayer === undefined ? fromArea : toArea} is in no layer: add it to LAYER_OF_AREA in this test and to docs/architecture.md`;
  }
  if (fromArea === toArea) return null;
  const { mayImport, rule } = RULES[fromLayer];
  if (mayImport.includes(toLayer) && !(fromLayer === 'adapter' && toLayer === 'adapter')) return null;
  return `${fromArea} (${fromLayer}) may not import ${toArea} (${toLayer}): ${rule}`;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every relative import of every file of src/ and machines/, as repository paths. */
function allImports(): { file: string; specifier: string; target: string }[] {
  return [...sourceFiles('src'), ...sourceFiles('machines')].flatMap((file) =>
    ts
      .preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true)
      .importedFiles.filter((imported) => imported.fileName.startsWith('.'))
      .map((imported) => ({
        file,
        specifier: imported.fileName,
        target: relative(ROOT, join(ROOT, dirname(file), imported.fileName)).split('\\').join('/'),
      })),
  );
}

describe('import direction', () => {
  it('no import runs back up the layers', () => {
    const imports = allImports();
    // The scan must have found the imports it checks (a broken scan would pass anything).
    expect(imports.length).toBeGreaterThan(500);
    expect(imports.some((i) => i.file === 'src/root/composition-root.ts' && i.target === 'src/store/database.ts')).toBe(true);
    const broken = imports
      .map((i) => ({ ...i, why: violation(i.file, i.target) }))
      .filter((i) => i.why !== null)
      .map((i) => `${i.file} imports '${i.specifier}': ${i.why}`);
    expect(broken, `imports that break the layering:\n${broken.join('\n')}`).toEqual([]);
  });

  it('names the file, the import and the rule when one does', () => {
    expect(violation('src/store/docker-repository.ts', 'src/docker/topology-model.ts')).toBe(
      `store (store) may not import docker (adapter): ${RULES.store.rule}`,
    );
    expect(violation('src/cloudflare/tunnel-configuration.ts', 'src/cloudflared/ingress/config-document.ts')).toMatch(/never another adapter/);
    expect(violation('src/app/use-cases/backend.ts', 'src/mcp/http-server.ts')).toMatch(/^app \(app\) may not import mcp \(mcp\)/);
    expect(violation('src/mcp/server.ts', 'src/root/composition-root.ts')).toMatch(/^mcp \(mcp\) may not import root \(root\)/);
    expect(violation('src/contract/backend.ts', 'src/app/use-cases/tunnel-status.ts')).toMatch(/tool contract sits under src\/app/);
    expect(violation('machines/tunnel.machine.ts', 'src/errors.ts')).toMatch(/machines are pure/);
    expect(violation('src/errors.ts', 'src/app/config/config.ts')).toMatch(/shared leaf/);
    expect(violation('src/newthing/x.ts', 'src/errors.ts')).toMatch(/src\/newthing is in no layer/);
  });

  it('lets each layer import what is below it', () => {
    expect(violation('src/mcp/server.ts', 'src/app/use-cases/tunnel-status.ts')).toBeNull();
    expect(violation('src/cli.ts', 'src/root/composition-root.ts')).toBeNull();
    expect(violation('src/cli.ts', 'src/commands/serve.ts')).toBeNull();
    expect(violation('src/commands/serve.ts', 'src/root/composition-root.ts')).toBeNull();
    expect(violation('src/app/use-cases/backend.ts', 'src/contract/backend.ts')).toBeNull();
    expect(violation('src/docker/topology-tracker.ts', 'src/store/docker-repository.ts')).toBeNull();
    expect(violation('src/store/audit-repository.ts', 'src/redact.ts')).toBeNull();
    expect(violation('src/sandbox/standin-cloudflared/run.ts', 'src/cloudflared/ingress/ingress-validation.ts')).toBeNull();
  });
});
