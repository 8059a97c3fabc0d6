/**
 * `require('tensornormal/experiments')`: the ES module itself, through require(esm), as the library's own entry
 * point (lib/index.cts, lib/require-esm.cts), so that both share one copy of the library.
 */
function load(): unknown {
  try {
    return require('./index.js');
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
    throw new Error(
      `tensornormal/experiments is an ES module, and this Node.js (${process.version}) cannot require() it: require(esm) ` +
        `needs Node 20.19+ or 22.12+ (and must not be turned off with --no-experimental-require-module). From CommonJS, ` +
        `load it with \`const experiments = await import('tensornormal/experiments')\`.`,
      { cause: err },
    );
  }
}
export = load();
