import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Tests run the TypeScript sources through vitest, but the ones that start the real command (`tunnel-manager …`)
 * or the stand-in cloudflared run what `npm run build` makes, as users do. Building here, once before any test
 * file, means those processes always run the current sources: dist/ can never be stale under test.
 */
export default function buildBeforeTests(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], { stdio: 'inherit' });
}
