#!/usr/bin/env node
// Builds what the `tunnel-manager` bin and `npm start` run: plain JavaScript in dist/, made by esbuild from the
// TypeScript sources (ADR 0004). Runs as the package's `prepare` script, so `npm ci` leaves a working command.
//
//   dist/cli.js                  the command; each command imports its own chunk (dist/chunks/), so `--help` or
//                                `call` load neither the service, the Cloudflare SDK nor dockerode
//   dist/standin-cloudflared.js  the sandbox's stand-in cloudflared, its own small program
//   dist/cloudflare-emulator.js  the sandbox's Cloudflare API emulator as a program of its own
//   dist/meta.json               esbuild's metafile: which sources each output holds (a test reads it)
//
// Bundled: our sources and the pure-JavaScript libraries (the Cloudflare SDK only through its tree-shakable
// entry point, so only the endpoints we call are in). dockerode is bundled without two transports we never use,
// which it loads at import and which cost about 20 MB resident: BuildKit (gRPC + protobuf) and Docker over SSH
// (ssh2); calling either fails with a clear message. Left as packages: better-sqlite3 (native) and pino (it
// starts worker threads from files of its own).
import { build } from 'esbuild';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The installed packages that dist/ loads at run time (all else is in the bundle): the two left out of it below, and
 * pino-pretty, which src/app/config/logger.ts requires when asked to print readable lines. scripts/runtime-modules.mjs
 * copies them, with what they depend on, into the container image.
 */
export const RUNTIME_PACKAGES = ['better-sqlite3', 'pino', 'pino-pretty'];
const outdir = join(root, process.env.TUNNEL_MANAGER_BUILD_DIR ?? 'dist');

/** Replaces dockerode's BuildKit session and docker-modem's SSH transport with a module that refuses clearly. */
const withoutUnusedDockerTransports = {
  name: 'without-unused-docker-transports',
  setup(build) {
    const stubs = [
      { filter: /^\.\/session$/, importer: /[\\/]dockerode[\\/]lib[\\/]/, what: 'BuildKit sessions (docker build with a session)' },
      { filter: /^\.\/buildkit$/, importer: /[\\/]dockerode[\\/]lib[\\/]/, what: 'BuildKit builds (docker build --version 2)' },
      { filter: /^\.\/ssh$/, importer: /[\\/]docker-modem[\\/]lib[\\/]/, what: 'Docker over SSH (docker.host ssh://…)' },
    ];
    for (const stub of stubs) {
      build.onResolve({ filter: stub.filter }, (args) =>
        stub.importer.test(args.importer) ? { path: stub.what, namespace: 'tm-unsupported' } : undefined,
      );
    }
    build.onLoad({ filter: /.*/, namespace: 'tm-unsupported' }, (args) => ({
      loader: 'js',
      contents: `module.exports = function unsupported() { throw new Error(${JSON.stringify(`tunnel-manager is built without ${args.path}: talk to Docker through its unix socket (docker.socketPath)`)}); };`,
    }));
  },
};

export async function buildAll({ quiet = false } = {}) {
  const started = Date.now();
  // Built beside dist/ and swapped in at the end, so a process starting meanwhile (a test run in parallel, a
  // service being restarted) finds either the old build or the new one, never half of one.
  const building = `${outdir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: {
      cli: 'src/cli.ts',
      'standin-cloudflared': 'src/sandbox/standin-cloudflared/main.ts',
      'cloudflare-emulator': 'src/sandbox/cloudflare-emulator/main.ts',
    },
    outdir: building,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    chunkNames: 'chunks/[name]-[hash]',
    external: ['better-sqlite3', 'pino', 'pino-*', 'thread-stream'],
    plugins: [withoutUnusedDockerTransports],
    // CommonJS libraries inside an ES module bundle still call require() for Node's built-ins.
    banner: { js: "import { createRequire as __tmCreateRequire } from 'node:module'; const require = __tmCreateRequire(import.meta.url);" },
    // One-byte source strings (a single non-ASCII character makes V8 keep a whole chunk as two-byte text) and no
    // whitespace or comments: the source text of every loaded chunk stays in memory. Names are kept, so stack
    // traces still read; the source maps point back into src/ (node --enable-source-maps).
    charset: 'ascii',
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    legalComments: 'none',
  });
  // The metafile names outputs by their final place.
  const metafile = {
    ...result.metafile,
    outputs: Object.fromEntries(Object.entries(result.metafile.outputs).map(([file, output]) => [file.replace(/^[^/]*\.building-\d+\//, `${outdir.slice(root.length + 1)}/`), output])),
  };
  writeFileSync(join(building, 'meta.json'), JSON.stringify(metafile));
  const old = `${outdir}.old-${process.pid}`;
  try {
    renameSync(outdir, old);
  } catch {
    // first build: nothing to move away
  }
  renameSync(building, outdir);
  rmSync(old, { recursive: true, force: true });
  if (!quiet) {
    const outputs = Object.entries(metafile.outputs).filter(([file]) => file.endsWith('.js'));
    const kb = outputs.reduce((sum, [, output]) => sum + output.bytes, 0) / 1024;
    process.stdout.write(`build: ${outputs.length} files, ${Math.round(kb)} KB of JavaScript in ${Date.now() - started} ms → ${outdir}\n`);
  }
  return metafile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildAll();
}
