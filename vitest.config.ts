import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    // The experiments import the library by its package name (the public API); in the tests that name is the
    // sources, as tsconfig.test.json's "paths" (the built package resolves it to dist/ through "exports").
    alias: [
      { find: /^tensornormal$/, replacement: here('./lib/index.ts') },
      { find: /^tensornormal\/runtime-env$/, replacement: here('./lib/runtime-env.ts') },
      { find: /^tensornormal\/experiments$/, replacement: here('./experiments/index.ts') },
    ],
  },
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
