import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The deployment tests (.ci/deploy-check): the unit under systemd as PID 1 and the image, built and run. Minutes
 * each (npm ci inside a container, docker build), so not part of `npm test`; one file at a time on a small machine.
 *   npx vitest run --config test/deploy/vitest.config.ts
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/deploy/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
  },
});
