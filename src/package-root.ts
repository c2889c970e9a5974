import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder of this package (where package.json, migrations/ and dist/ are), found by walking up from the
 * running module. The same code runs from the sources (src/…, under vitest) and from the bundle (dist/…), which sit
 * at different depths, so no path here is written relative to one of them.
 */
/** A string field of a package.json, or undefined when it has none. */
function manifestField(file: string, field: 'name' | 'version'): string | undefined {
  const manifest: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (typeof manifest !== 'object' || manifest === null || !(field in manifest)) return undefined;
  const value: unknown = Reflect.get(manifest, field);
  return typeof value === 'string' ? value : undefined;
}

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && manifestField(manifest, 'name') === 'tunnel-manager') return dir;
    if (dirname(dir) === dir) throw new Error(`tunnel-manager: no package.json of tunnel-manager above ${start}`);
  }
}

export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

export function packageVersion(): string {
  const file = join(PACKAGE_ROOT, 'package.json');
  const version = manifestField(file, 'version');
  if (version === undefined) throw new Error(`tunnel-manager: ${file} has no version`);
  return version;
}

/** The built stand-in cloudflared (its own small entry point, `npm run build` makes it). */
export const STANDIN_CLOUDFLARED_BUNDLE = join(PACKAGE_ROOT, 'dist', 'standin-cloudflared.js');
