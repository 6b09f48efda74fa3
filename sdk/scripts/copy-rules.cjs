'use strict';
// Build step: ships the repository's rule table (rules/recommendations.json, the one the server
// applies) inside the package as dist/recommendations.json, for `coldstart profile`.
const { copyFileSync } = require('node:fs');
const { join } = require('node:path');

copyFileSync(join(__dirname, '..', '..', 'rules', 'recommendations.json'), join(__dirname, '..', 'dist', 'recommendations.json'));
