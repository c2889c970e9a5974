import { TunnelManagerError } from './errors.ts';

/**
 * The Node.js majors the manager runs on: 22 (from 22.13) and 24, the long-term-support lines (package.json
 * `engines`; Node 20 left support in April 2026). better-sqlite3 13, the database driver, is a Node-API module for
 * Node 22 and later: on Node 20 it installs with only a warning and then crashes the process (a segmentation fault),
 * so the command refuses an older Node before anything loads it.
 */
export const SUPPORTED_NODE = 'Node.js 22 (22.13 or later) or 24';

export function unsupportedRuntime(version: string = process.versions.node): TunnelManagerError | null {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major >= 24 || (major === 22 && minor >= 13)) return null;
  return new TunnelManagerError({
    code: 'RUNTIME_UNSUPPORTED',
    message: `tunnel-manager needs ${SUPPORTED_NODE}; this is Node.js ${version}.`,
    fix: 'Run it with Node.js 24 or 22 (e.g. `npx -p node@24 node bin/tunnel-manager.js …`, or install Node 24 first on PATH), then `npm ci` again so the dependencies match it.',
    details: { node: version, supported: SUPPORTED_NODE },
  });
}

export function assertSupportedRuntime(version?: string): void {
  const problem = unsupportedRuntime(version);
  if (problem) throw problem;
}
