// Every symbol the package exports (lib/index.ts, followed through `export * as ns` namespaces and re-exports)
// must carry a doc comment (/** ... */) on its declaration: the API reference (`npm run docs`, TypeDoc) is made from
// them. Prints the undocumented ones and exits 1 if there are any. Run by test/docs.test.ts (npm test).
import ts from 'typescript';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** [exported name, file:line] of every undocumented export reachable from `entry`. */
export function undocumentedExports(entry = join(root, 'lib', 'index.ts')) {
  const configPath = join(root, 'tsconfig.build.json');
  const config = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
  );
  const program = ts.createProgram({ rootNames: [entry], options: { ...config.options, noEmit: true } });
  const checker = program.getTypeChecker();
  const missing = [];
  const seen = new Set();
  const visitModule = (moduleSymbol, prefix) => {
    for (const exp of checker.getExportsOfModule(moduleSymbol)) {
      const name = prefix + exp.getName();
      const target = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
      const decls = target.getDeclarations() ?? [];
      if (decls.length === 0) continue;
      // a namespace re-export (`export * as nn from './nn/index.js'`): its target is a module; document the module
      // (its file's first comment) and walk into it
      const isModule = decls.some((d) => ts.isSourceFile(d));
      if (seen.has(target)) continue;
      seen.add(target);
      if (isModule) {
        const sf = decls.find((d) => ts.isSourceFile(d));
        const first = sf.statements[0];
        const hasComment =
          first &&
          (ts.getLeadingCommentRanges(sf.text, first.pos) ?? []).some((r) => sf.text.slice(r.pos, r.pos + 3) === '/**');
        if (!hasComment) missing.push([name, `${relative(root, sf.fileName)}:1 (module comment)`]);
        visitModule(target, name + '.');
        continue;
      }
      const documented =
        target.getDocumentationComment(checker).length > 0 || decls.some((d) => ts.getJSDocTags(d).length > 0);
      if (!documented) {
        const d = decls[0];
        const sf = d.getSourceFile();
        const line = sf.getLineAndCharacterOfPosition(d.getStart()).line + 1;
        missing.push([name, `${relative(root, sf.fileName)}:${line}`]);
      }
    }
  };
  const mod = checker.getSymbolAtLocation(program.getSourceFile(entry));
  visitModule(mod, '');
  return missing;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const missing = undocumentedExports();
  for (const [name, where] of missing) console.log(`${where}  ${name}`);
  if (missing.length > 0) {
    console.error(`${missing.length} exported symbols without a doc comment`);
    process.exit(1);
  }
  console.log('every exported symbol has a doc comment');
}
