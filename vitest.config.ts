import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/{unit,model,integration,e2e}/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    benchmark: { include: ['test/bench/**/*.bench.ts'] },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
