/**
 * The CommonJS entry points (`require('tensornormal')`: index.cts) load the ES modules
 * themselves through Node's require(esm) (unflagged from Node 20.19 and 22.12), so that CommonJS and ESM callers
 * share one copy of the library: one Tensor class, one TorchError class, one addon state. A second, CommonJS build
 * would give a process two of each (the dual-package hazard: a tensor from one fails `instanceof Tensor` in the
 * other). Where this Node cannot require() an ES module, the error says how to load the package instead.
 */
function requireEsm(load: () => unknown, specifier: string): unknown {
  try {
    return load();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
    throw new Error(
      `${specifier} is an ES module, and this Node.js (${process.version}) cannot require() it: require(esm) needs ` +
        `Node 20.19+ or 22.12+ (and must not be turned off with --no-experimental-require-module). From CommonJS, load ` +
        `it with \`const torch = await import('${specifier}')\`; from an ES module, \`import * as torch from '${specifier}'\`.`,
      { cause: err },
    );
  }
}
export = requireEsm;
