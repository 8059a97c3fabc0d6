// ESLint (flat config) with typescript-eslint's recommended rules, for the library, the experiments application,
// the tests, the examples, and the bench and scripts programs. `npm test` runs it (`npm run lint` alone).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { defineConfig } from 'eslint/config';

export default defineConfig(
  // build outputs, and what is not this project's JavaScript or TypeScript
  { ignores: ['dist/', 'build/', 'build-*/', 'prebuilds/', 'results/', '.device/', '.whl/', 'native/', 'docs/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A leading underscore marks a deliberately unused name: a callback's parameter kept for its position
      // (`(_c, x) => ...`), an option taken out of a rest spread (`const { params: _ignored, ...options } = g`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // The CommonJS entry points load the ES modules with require() on purpose (require(esm): one copy of the
    // library for CommonJS and ESM callers; see lib/require-esm.cts), and `import x = require()` is how a .cts
    // file imports.
    files: ['**/*.cts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The experiments are an application of the library: the public API ('tensornormal', its subpaths) only.
    files: ['experiments/**/*.ts', 'experiments/**/*.cts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../lib', '../lib/*', '**/lib/**'],
              message: "The experiments use the library's public API only: import from 'tensornormal'.",
            },
          ],
        },
      ],
    },
  },
);
