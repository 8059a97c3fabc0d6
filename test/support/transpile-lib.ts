/**
 * Transpiles lib/ to plain ESM JavaScript in `out` (out/lib/..., out/package.json) so that a child Node process can
 * run the library: Node 20 does not run TypeScript. Type-only code is erased file by file (no type checking).
 * The child must find the addon through TENSORNORMAL_ADDON (see addonPath).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The addon this test process uses, for a child's TENSORNORMAL_ADDON. */
export const addonPath = process.env.TENSORNORMAL_ADDON ?? join(repoRoot, 'build', 'Release', 'tensornormal.node');

export function transpileLib(out: string): void {
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.ts')) {
        const js = ts.transpileModule(readFileSync(p, 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
        }).outputText;
        const dest = join(out, relative(repoRoot, p)).replace(/\.ts$/, '.js');
        mkdirSync(dirname(dest), { recursive: true });
        writeFileSync(dest, js);
      }
    }
  };
  walk(join(repoRoot, 'lib'));
  writeFileSync(join(out, 'package.json'), '{"type": "module"}');
}
