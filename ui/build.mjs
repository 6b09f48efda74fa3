// build.mjs: builds the web UI into dist/ (embedded into coldstartd by backend/cmake/embed-ui.cmake).
//   node build.mjs           writes dist/: index.html and assets/ with content-hashed names
//   node build.mjs --check   builds into a temporary folder and fails unless it equals dist/ byte for
//                            byte (the committed output is what the sources make) and fits the budget
// Reproducible: esbuild's version is pinned by package-lock.json, names hash the content, nothing
// depends on the time or the machine. Budget: every asset together at most 150 KB gzipped.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUDGET_GZIP = 150 * 1024;
const check = process.argv.includes('--check');
const out = check ? mkdtempSync(path.join(os.tmpdir(), 'csa-ui-')) : path.join(HERE, 'dist');

if (!check) rmSync(out, { recursive: true, force: true });
mkdirSync(path.join(out, 'assets'), { recursive: true });

const result = await esbuild.build({
  absWorkingDir: HERE,
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  legalComments: 'eof',
  charset: 'utf8',
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => path.basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
const iconBytes = readFileSync(path.join(HERE, 'src/icon.svg'));
const icon = `icon-${createHash('sha256').update(iconBytes).digest('hex').slice(0, 8).toUpperCase()}.svg`;
copyFileSync(path.join(HERE, 'src/icon.svg'), path.join(out, 'assets', icon));
const html = readFileSync(path.join(HERE, 'src/index.html'), 'utf8')
  .replaceAll('%APP_JS%', `/assets/${js}`)
  .replaceAll('%APP_CSS%', `/assets/${css}`)
  .replaceAll('%ICON%', `/assets/${icon}`);
writeFileSync(path.join(out, 'index.html'), html);

function files(dir, prefix = '') {
  return readdirSync(dir)
    .sort()
    .flatMap((name) =>
      statSync(path.join(dir, name)).isDirectory() ? files(path.join(dir, name), `${prefix}${name}/`) : [`${prefix}${name}`],
    );
}

let total = 0;
const rows = [];
for (const f of files(out)) {
  const bytes = readFileSync(path.join(out, f));
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  rows.push(`  ${f.padEnd(36)} ${String(bytes.length).padStart(8)} B  ${String(gz).padStart(7)} B gzipped`);
}
console.log(rows.join('\n'));
console.log(`  ${'total'.padEnd(36)} ${' '.repeat(10)}  ${String(total).padStart(7)} B gzipped (budget ${BUDGET_GZIP})`);
let failed = false;
if (total > BUDGET_GZIP) {
  console.error(`ui build: ${total} B gzipped is over the budget of ${BUDGET_GZIP} B`);
  failed = true;
}
if (check) {
  const dist = path.join(HERE, 'dist');
  const want = files(out);
  let have = [];
  try {
    have = files(dist);
  } catch {}
  const differ = [...new Set([...want, ...have])].filter((f) => {
    try {
      return !readFileSync(path.join(out, f)).equals(readFileSync(path.join(dist, f)));
    } catch {
      return true;
    }
  });
  rmSync(out, { recursive: true, force: true });
  if (differ.length) {
    console.error(`ui build: dist/ is not what the sources build (${differ.join(', ')}): run npm run build in ui/ and commit dist/`);
    failed = true;
  } else {
    console.log('ui build: dist/ matches the sources');
  }
}
process.exit(failed ? 1 : 0);
