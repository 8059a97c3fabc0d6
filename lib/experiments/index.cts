/** `require('tensornormal/experiments')`: the ES module itself, through require(esm) (see ../require-esm.cts). */
import requireEsm = require('../require-esm.cjs');
export = requireEsm(() => require('./index.js'), 'tensornormal/experiments');
