// After `tsc` (npm run build:ts): CommonJS declarations beside the ES ones, for TypeScript projects that compile to
// CommonJS (`module: node16`/`nodenext` in a package without "type": "module"). `require('tensornormal')` returns the
// ES module's namespace (require(esm), see lib/require-esm.cts), so its type is the ES declarations' shape; but a
// CommonJS file that reaches an ES declaration file gets TS1471/TS1479 ("cannot be imported with 'require'"). Each
// dist/**/X.d.ts gets a twin X.d.cts whose relative specifiers end in .cjs (which resolve to the twins), and
// package.json's "exports" points `require`'s `types` at index.d.cts (test/package.test.ts type-checks a CommonJS
// consumer with module node16 against the packed package).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const SPEC = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.js(['"])/g;

function walk(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== join(dist, 'examples')) n += walk(p);
    } else if (e.name.endsWith('.d.ts')) {
      const text = readFileSync(p, 'utf8').replace(SPEC, '$1$2.cjs$3');
      writeFileSync(p.slice(0, -'.d.ts'.length) + '.d.cts', text);
      n++;
    }
  }
  return n;
}

const n = walk(dist);
if (n === 0) throw new Error(`cjs-types: no declarations under ${dist} (run tsc first)`);
