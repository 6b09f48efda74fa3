// The docs' own test: node tests/docs/doccheck.mjs links|blocks|list [FILE.md ...]
//
//   links   every relative link of every tracked Markdown file (or of the FILEs) names a file or
//           folder that exists, and every #anchor a heading (GitHub's slugs) or an id in the
//           target. Web links (http:, https:, mailto:) are not fetched.
//   blocks  runs the shell blocks (```sh, ```bash, ```shell) of the FILEs in order, each in a
//           fresh `bash -e -o pipefail` in the working directory, and checks their exit status
//           and promised output. run.sh calls it inside the set-up `make run` makes.
//   list    prints what `blocks` would run or skip, without running anything.
//
// Markers: HTML comments on the lines just before a block's opening fence (invisible on GitHub).
//   <!-- doc-test: skip WHY text -->   not run; WHY is one of docker, aws, browser (needs what
//                                      this machine does not have), setup (make run / make test
//                                      themselves: run.sh runs make run as the set-up and make
//                                      test runs this), placeholder (values the reader fills
//                                      in), online (the Internet beyond Debian's and npm's
//                                      registries), long (minutes)
//   <!-- doc-test: expect TEXT -->     the block's output (stdout and stderr) contains TEXT
//   <!-- doc-test: before COMMAND -->  hidden preparation, run first in the same shell
// A shell block without a skip marker is run; one that needs something missing here fails, so
// it gets its marker. Environment: DOCS_PORT replaces 8000 in 127.0.0.1:8000 and
// localhost:8000 (the suite's server runs on a free port, not on a developer's 8000);
// DOCS_BLOCK_TIMEOUT (seconds, 180).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const [mode, ...args] = process.argv.slice(2);
const SKIP_KINDS = new Set(['docker', 'aws', 'browser', 'setup', 'placeholder', 'online', 'long']);
const SHELL = new Set(['sh', 'bash', 'shell']);

function trackedMarkdown() {
  const r = spawnSync('git', ['ls-files', '-z', '*.md'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error('git ls-files failed: ' + r.stderr);
  return r.stdout.split('\0').filter((f) => f && !f.includes('node_modules/') && existsSync(join(root, f)));
}

// Splits a Markdown file into prose lines (code spans kept, fenced blocks removed) and blocks.
function parse(file) {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const blocks = [];
  const prose = [];
  let fence = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (close && close[1][0] === fence.marker[0] && close[1].length >= fence.marker.length) {
        blocks.push(fence.block);
        fence = null;
      } else {
        fence.block.code.push(line);
      }
      continue;
    }
    const open = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (open) {
      const block = { file, line: i + 1, lang: open[2].toLowerCase(), code: [], skip: null, expect: [], before: [] };
      for (let j = i - 1; j >= 0; j--) {
        const m = /^\s*<!--\s*doc-test:\s*(skip|expect|before)\s+([\s\S]*?)\s*-->\s*$/.exec(lines[j]);
        if (!m) break;
        if (m[1] === 'skip') block.skip = m[2];
        else if (m[1] === 'expect') block.expect.unshift(m[2]);
        else block.before.unshift(m[2]);
      }
      fence = { marker: open[1], block };
      continue;
    }
    prose.push({ n: i + 1, text: line });
  }
  if (fence) throw new Error(`${file}:${fence.block.line}: code block never closed`);
  return { blocks, prose, lines };
}

function slug(text) {
  return text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

const anchorCache = new Map();
function anchors(file) {
  if (anchorCache.has(file)) return anchorCache.get(file);
  const set = new Set();
  const seen = new Map();
  for (const { text } of parse(file).prose) {
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (h) {
      const base = slug(h[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      set.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) set.add(m[1]);
  }
  anchorCache.set(file, set);
  return set;
}

function checkLinks(files) {
  const errors = [];
  let count = 0;
  for (const file of files) {
    for (const { n, text } of parse(file).prose) {
      const withoutCode = text.replace(/`[^`]*`/g, '');
      for (const m of withoutCode.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
        const target = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
        count++;
        const [path, anchor] = target.split('#');
        const dest = path ? join(dirname(file), decodeURIComponent(path)) : file;
        const where = `${file}:${n}: ${target}`;
        if (!existsSync(join(root, dest))) {
          errors.push(`${where}: ${dest} does not exist`);
          continue;
        }
        if (anchor !== undefined && dest.endsWith('.md') && statSync(join(root, dest)).isFile()) {
          if (!anchors(dest).has(anchor)) errors.push(`${where}: no heading or id "${anchor}" in ${dest}`);
        }
      }
    }
  }
  return { errors, count };
}

function shellBlocks(files) {
  const out = [];
  for (const file of files) for (const b of parse(file).blocks) if (SHELL.has(b.lang)) out.push(b);
  return out;
}

function skipKind(block) {
  if (block.skip === null) return null;
  const kind = block.skip.split(/\s+/)[0];
  if (!SKIP_KINDS.has(kind)) throw new Error(`${block.file}:${block.line}: doc-test skip "${kind}" is not one of ${[...SKIP_KINDS].join(', ')}`);
  return kind;
}

function runBlocks(files) {
  const port = process.env.DOCS_PORT;
  const timeout = Number(process.env.DOCS_BLOCK_TIMEOUT || 180) * 1000;
  let ran = 0, skipped = 0, failed = 0;
  for (const b of shellBlocks(files)) {
    const where = `${b.file}:${b.line}`;
    if (skipKind(b)) {
      skipped++;
      console.log(`-- skip ${where} (${b.skip})`);
      continue;
    }
    let code = b.code.join('\n');
    if (port) code = code.replace(/\b(127\.0\.0\.1|localhost):8000\b/g, `$1:${port}`);
    const script = [...b.before, code].join('\n');
    const started = Date.now();
    const r = spawnSync('bash', ['--noprofile', '--norc', '-e', '-o', 'pipefail', '-c', script], {
      cwd: process.cwd(),
      encoding: 'utf8',
      timeout,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    ran++;
    const output = (r.stdout ?? '') + (r.stderr ?? '');
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const problems = [];
    if (r.error) problems.push(`could not run: ${r.error.message}`);
    if (r.signal) problems.push(`killed by ${r.signal}${r.signal === 'SIGTERM' ? ` (over ${timeout / 1000} s?)` : ''}`);
    else if (r.status !== 0) problems.push(`exit status ${r.status}`);
    for (const e of b.expect) if (!output.includes(e)) problems.push(`output lacks: ${e}`);
    if (problems.length === 0) {
      console.log(`ok   ${where} (${seconds} s)`);
      continue;
    }
    failed++;
    console.log(`FAIL ${where} (${seconds} s): ${problems.join('; ')}`);
    console.log('     the block:\n' + script.replace(/^/gm, '     | '));
    console.log('     its output:\n' + (output.trimEnd() || '(none)').replace(/^/gm, '     > '));
  }
  console.log(`doc blocks: ${ran} run, ${failed} failed, ${skipped} skipped (marked)`);
  return failed === 0;
}

// FILEs are named relative to the repository's root
const files = args.length > 0 ? args : null;
if (mode === 'links') {
  const { errors, count } = checkLinks(files ?? trackedMarkdown());
  for (const e of errors) console.log(`FAIL ${e}`);
  console.log(`doc links: ${count} relative links checked, ${errors.length} broken`);
  process.exit(errors.length === 0 ? 0 : 1);
} else if (mode === 'blocks') {
  process.exit(runBlocks(files ?? []) ? 0 : 1);
} else if (mode === 'list') {
  for (const b of shellBlocks(files ?? [])) {
    console.log(`${skipKind(b) ? 'skip' : 'run '} ${b.file}:${b.line}${b.skip ? ` (${b.skip})` : ''}${b.expect.length ? ` expect ${JSON.stringify(b.expect)}` : ''}`);
  }
} else {
  console.error('usage: node tests/docs/doccheck.mjs links|blocks|list [FILE.md ...]');
  process.exit(2);
}
