// What the SDK benchmarks share: the Node.js binaries of the SDK's tests and the check that the
// benchmark's inputs are built.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sdk = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sdk');

/** The Node.js binaries the SDK's tests use (sdk/test/node-versions, installed on first use). */
export function nodeBinary(version) {
  const dir = join(sdk, 'test', 'node-versions');
  const binary = join(dir, 'node_modules', `node${version}`, 'bin', 'node');
  if (!existsSync(binary)) execSync('npm ci --no-audit --no-fund --loglevel=error', { cwd: dir, stdio: 'inherit' });
  return binary;
}

/** Exits with what to run when one of the benchmark's inputs is missing. */
export function requireBuilt(paths) {
  for (const needed of paths) {
    if (!existsSync(needed)) {
      console.error(`missing ${needed}: run \`npm ci\` in bench/sdk and \`npm ci && npm run build\` in sdk first`);
      process.exit(1);
    }
  }
}
