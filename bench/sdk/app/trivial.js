'use strict';
// Warm-invocation benchmark handler: does nothing, so what is measured is the wrapper.
exports.handler = async () => ({ statusCode: 200 });
