import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // GPU tests on lavapipe are slow on 2 cores; each file sets its own budget where needed.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One Dawn instance per worker process is plenty on a 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
