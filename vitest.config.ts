import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native addons load once per process: forks isolate test files from each other.
    pool: 'forks',
    // one libtorch thread per test process: two processes with two OpenMP threads each on two cores spin-wait
    env: { TENSORNORMAL_NUM_THREADS: '1' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
