#!/usr/bin/env node
// Copies into DEST (a node_modules directory) the installed packages that dist/ loads at run time, with what they
// depend on, and nothing else: the bundle holds the rest (scripts/build.mjs). deploy/Dockerfile's runtime stage takes
// these instead of every production dependency (unbundled, the Cloudflare SDK alone is 120 MB).
//
//   node scripts/runtime-modules.mjs DEST      (after npm ci, and after better-sqlite3 is built)
//
// The packages come from package-lock.json, resolved the way Node resolves them (a package's own node_modules first,
// then each parent's), so the copy holds exactly the versions npm ci installed.
import { cpSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNTIME_PACKAGES } from './build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The lockfile paths (node_modules/a, node_modules/a/node_modules/b) of the runtime packages and their dependencies. */
export function runtimeModulePaths(lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'))) {
  const packages = lock.packages;
  const resolve = (from, name) => {
    for (let base = from; ; base = base.slice(0, Math.max(0, base.lastIndexOf('/node_modules/')))) {
      const candidate = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
      if (packages[candidate]) return candidate;
      if (base === '') return null;
    }
  };
  const found = new Set();
  const visit = (path) => {
    if (found.has(path)) return;
    found.add(path);
    const entry = packages[path];
    for (const [name, optional] of [
      ...Object.keys(entry.dependencies ?? {}).map((name) => [name, false]),
      ...Object.keys(entry.optionalDependencies ?? {}).map((name) => [name, true]),
    ]) {
      const dependency = resolve(path, name);
      if (dependency) visit(dependency);
      else if (!optional) throw new Error(`${path} depends on ${name}, which package-lock.json does not hold`);
    }
  };
  for (const name of RUNTIME_PACKAGES) {
    const path = resolve('', name);
    if (!path) throw new Error(`${name} is not in package-lock.json: add it to the dependencies`);
    visit(path);
  }
  return [...found].sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const destination = process.argv[2];
  if (!destination) {
    process.stderr.write('usage: node scripts/runtime-modules.mjs DEST\n');
    process.exit(2);
  }
  rmSync(destination, { recursive: true, force: true });
  for (const path of runtimeModulePaths()) {
    const source = join(root, path);
    if (!existsSync(source)) continue; // an optional dependency for another platform
    // Each package without its own node_modules/: the packages in there that are needed are copied on their own. Of
    // a native package (binding.gyp) only what it loads: its JavaScript and the built .node, not the sources and the
    // compiler's intermediate files (better-sqlite3 12: 32 MB -> 2 MB), and of its prebuilt binaries only this
    // platform's (the image runs where it was built; better-sqlite3 13 ships eight: 17 MB -> 2 MB).
    const native = existsSync(join(source, 'binding.gyp'));
    cpSync(source, join(destination, path.slice('node_modules/'.length)), {
      recursive: true,
      filter: (file) => {
        const parts = file.slice(source.length).split(sep).filter(Boolean);
        if (parts.includes('node_modules')) return false;
        if (!native) return true;
        if (parts[0] === 'src' || parts[0] === 'deps') return false;
        if (parts[0] === 'prebuilds' && parts.length > 1 && !parts[1].startsWith(`${process.platform}-${process.arch}`)) return false;
        return parts[0] !== 'build' || statSync(file).isDirectory() || file.endsWith('.node');
      },
    });
  }
}
