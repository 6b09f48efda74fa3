'use strict';
// Loaded by the runner before the handler, as Lambda's runtime loads its own modules first:
// the module system's one-time set-up is then not charged to the function's first module.
require('./warmup-dep.cjs');
