// Regenerates extension/hot-layout.ld: the object files whose code or read-only data the extension
// uses (start-up, shipping over http, shipping over https with an ECDSA and with an RSA
// certificate), listed so that the linker puts them next to each other (the script's header says
// why). Run it after changing the code or the dependencies; a stale list only costs memory.
// Usage: node tests/hot-layout.mjs [binary]   (default build/coldstart-extension, built by CMake
// with CSA_HOT_LAYOUT: the link map <binary>.map is read, and the binary is relinked between
// rounds). Needs valgrind, perf, openssl and the SDK built (tests/fixture wraps it).
//
// Two sources: callgrind names every function that runs (under valgrind's emulated CPU; the data
// their code refers to is found in objdump's disassembly), and perf records the addresses of the
// page faults of a native run (data reached through pointers, the C library's variants for this
// CPU). A fault maps a whole 64 KiB window, which hides the other objects used
// in it: after each relink the native runs are repeated until no new object shows up.

import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeBackend } from './fake-backend.mjs';
import { freePort, LambdaEmulator } from './lambda-emulator.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = path.resolve(process.argv[2] || path.join(here, '../build/coldstart-extension'));
const buildDir = path.dirname(binary);
const output = path.join(here, '../hot-layout.ld');
const ROUNDS = 8; // native rounds at most (each finds fewer new objects)
const dir = mkdtempSync(path.join(os.tmpdir(), 'csa-layout-'));
const run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });

/** A self-signed certificate for 127.0.0.1 and a CA file = the system bundle + it. */
function tlsMaterial(name, keyArgs) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', ...keyArgs, '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const system = ['/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/certs/ca-certificates.crt'].find((f) => existsSync(f));
  const bundle = path.join(dir, `${name}-bundle.pem`);
  writeFileSync(bundle, (system ? readFileSync(system, 'utf8') : '') + readFileSync(cert, 'utf8'));
  return { key: readFileSync(key), cert: readFileSync(cert), caFile: bundle };
}

const SCENARIOS = {
  http: undefined,
  'https-ecdsa': tlsMaterial('ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']),
  'https-rsa': tlsMaterial('rsa', ['-newkey', 'rsa:2048']),
};

/** Runs the extension (under `tool`) through a few invocations; returns the tool's output file. */
async function profile(name, tool, round = 0) {
  const tls = SCENARIOS[name];
  const tag = `${name}-${tool}-${round}`;
  const out = path.join(dir, `${tag}.out`);
  const wrapper = path.join(dir, `${tag}.sh`);
  const command =
    tool === 'callgrind'
      ? `valgrind --tool=callgrind --callgrind-out-file=${out} ${binary} "$@" 2>/dev/null`
      : `perf record -q -e page-faults -c 1 -d -o ${out} -- ${binary} "$@"`;
  writeFileSync(wrapper, `#!/bin/sh\nexec ${command}\n`);
  chmodSync(wrapper, 0o755);
  mkdirSync(path.join(dir, tag));
  symlinkSync(wrapper, path.join(dir, tag, 'coldstart'));
  const backend = await new FakeBackend().listen(tls);
  const port = await freePort();
  const emu = new LambdaEmulator({
    extension: path.join(dir, tag, 'coldstart'),
    runtime: path.join(here, 'runtime.cjs'),
    taskRoot: path.join(here, 'fixture'),
    freeze: false,
    shutdownMs: 10000,
    env: { COLDSTART_API_KEY: 'layout' },
    runtimeEnv: { COLDSTART_ENDPOINT: `http://127.0.0.1:${port}` },
    extensionEnv: { COLDSTART_ENDPOINT: backend.url, COLDSTART_EXTENSION_PORT: String(port), COLDSTART_TELEMETRY_PORT: String(await freePort()), COLDSTART_EXTENSION_STREAM_PORT: String(await freePort()), COLDSTART_EXTENSION_JOIN_WAIT_MS: '0', ...(tls ? { COLDSTART_CA_FILE: tls.caFile } : {}) },
  });
  await emu.start();
  for (let i = 0; i < 5; i++) await emu.invoke({ n: i });
  await new Promise((r) => setTimeout(r, 2000));
  await emu.shutdown();
  backend.close();
  if (!existsSync(out)) throw new Error(`${tag}: no output`);
  if (backend.stored.size === 0) throw new Error(`${tag}: nothing was shipped, the profile would miss the shipping code`);
  return out;
}

/** Names of the functions of the binary that ran (callgrind's compressed "(id) name" format). */
function functionsRun(file) {
  const objects = new Map();
  const names = new Map();
  const ran = new Set();
  let object;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    let m = /^(c?)ob=\((\d+)\)(?: (.*))?$/.exec(line);
    if (m) {
      if (m[3]) objects.set(m[2], m[3].trim());
      if (!m[1]) object = m[2];
      continue;
    }
    m = /^(c?)fn=\((\d+)\)(?: (.*))?$/.exec(line);
    if (!m) continue;
    if (m[3]) names.set(m[2], m[3].trim().split("'")[0]);
    // valgrind names the object of code outside .text (our .text.hot) "???"
    if (!m[1] && [binary, '???'].includes(objects.get(object))) ran.add(m[2]);
  }
  return new Set([...ran].map((id) => names.get(id)));
}

/** The linked binary as this script needs it: symbols, input sections, IRELATIVE resolvers. */
function load() {
  // every address of each function name (static functions of different objects share names)
  const symbols = new Map();
  for (const line of run('nm', ['--defined-only', binary]).split('\n')) {
    const [addr, type, name] = line.split(' ');
    if (name && 'tTwW'.includes(type)) symbols.set(name, [...(symbols.get(name) || []), parseInt(addr, 16)]);
  }
  // the link map's input sections that the script moves: " .text[.x] 0xaddr 0xsize file" (long
  // names wrap the line), the same for .rodata and .data.rel.ro; merged string sections are
  // listed with their sizes before merging, so ranges may overlap
  const sections = [];
  const lines = readFileSync(`${binary}.map`, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const head = /^ (\.(?:text|rodata|data\.rel\.ro)(?:\.\S*)?)(.*)$/.exec(lines[i]);
    if (!head) continue;
    const m = /^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$/.exec(head[2] || lines[i + 1] || '');
    if (m && parseInt(m[1], 16) > 0 && parseInt(m[2], 16) > 0) sections.push({ name: head[1], addr: parseInt(m[1], 16), size: parseInt(m[2], 16), file: m[3] });
  }
  const sectionAt = (addr) => sections.find((s) => addr >= s.addr && addr < s.addr + s.size);
  const at = (addr) => sectionAt(addr)?.file;
  // a static glibc runs every IRELATIVE resolver (memcpy's, strlen's, ...) at start-up
  const resolvers = new Set();
  for (const line of run('readelf', ['-rW', binary]).split('\n')) {
    const m = /IRELATIVE?\s+([0-9a-f]+)\s*$/.exec(line);
    if (m && at(parseInt(m[1], 16))) resolvers.add(at(parseInt(m[1], 16)));
  }
  const files = [...new Set(sections.map((s) => s.file))];
  // the read-only data each function's code refers to (RIP-relative operands and absolute
  // addresses, as objdump shows them), by function name
  const dataRefs = new Map();
  let fn;
  for (const line of run('objdump', ['-d', '--no-show-raw-insn', binary]).split('\n')) {
    const h = /^[0-9a-f]+ <([^>]+)>:$/.exec(line);
    if (h) fn = h[1];
    for (const m of line.matchAll(/# ([0-9a-f]+) <|\$0x([0-9a-f]{6,})\b/g)) {
      const s = sectionAt(parseInt(m[1] || m[2], 16));
      if (fn && s && !s.name.startsWith('.text')) dataRefs.set(fn, [...(dataRefs.get(fn) || []), s.file]);
    }
  }
  return { symbols, sections, sectionAt, at, resolvers, files, dataRefs };
}

// What each scenario uses, as two sets of object files: `code` (functions that ran, natively or
// under valgrind) and `data` (their objects too, the read-only data their code refers to, and
// data that page-faulted): an object whose tables are read but whose code never runs keeps its
// code where it is.
const newUse = () => ({ code: new Set(), data: new Set() });
function addRan(bin, use, names) {
  for (const n of names) {
    for (const f of (bin.symbols.get(n) || []).map(bin.at).filter(Boolean)) use.code.add(f), use.data.add(f);
    for (const f of bin.dataRefs.get(n) || []) use.data.add(f);
  }
}
/** Adds the objects at the perf profile's fault addresses; returns how many were new. */
function addFaults(bin, use, file) {
  let added = 0;
  for (const line of run('perf', ['script', '-i', file, '-F', 'addr']).split('\n')) {
    const s = bin.sectionAt(parseInt(line.trim(), 16));
    if (!s) continue;
    const sets = s.name.startsWith('.text') ? [use.code, use.data] : [use.data];
    if (!sets[0].has(s.file)) added++;
    for (const set of sets) set.add(s.file);
  }
  return added;
}
// libc's variants of one function (strcmp-evex.o, strcmp-avx2.o, strcmp-sse2.o, ...) are picked
// for the CPU at start-up: when one ran, the AVX-512 and the AVX2 ones join (Lambda's x86 CPUs
// have one or the other, and this machine's and valgrind's may differ from them)
const family = (file) => (/libc\.a\(([a-z0-9_]+?)(?:-[\w-]+)?\.o\)$/.exec(file) || [])[1];
const likely = (file) => /-evex|-avx2(?![\w-]*rtm)/.test(file) || !/-(sse|ssse|avx|evex|erms)/.test(file);
// "libcrypto.a(libcrypto-lib-x509_vfy.o)" -> "*libcrypto.a:libcrypto-lib-x509_vfy.o"; the
// program's own objects by file name (the C library's start files stay where they are; libc.a's
// objects only match when glibc is linked statically)
const pattern = (file) => {
  const m = /^(?:.*\/)?([^/(]+\.a)\((.*)\)$/.exec(file);
  if (m) return `*${m[1]}:${m[2]}`;
  return /crt\w*\.o$/.test(file) ? undefined : `*${path.basename(file)}`;
};

function layout(bin, used) {
  const multiarch = new Set([...bin.resolvers].map(family).filter(Boolean));
  const firstAt = (file) => bin.sections.find((s) => s.file === file).addr;
  const order = (list) => [...list].filter((f) => pattern(f)).sort((a, b) => firstAt(a) - firstAt(b));
  const groupsOf = (kind) => {
    const all = {};
    for (const [name, use] of Object.entries(used)) {
      const s = new Set(name === 'http' ? [...use[kind], ...bin.resolvers] : use[kind]);
      const families = new Set([...s].map(family).filter((f) => multiarch.has(f)));
      for (const f of bin.files) if (families.has(family(f)) && likely(f)) s.add(f);
      all[name] = s;
    }
    // start-up first, then what both kinds of certificate use, then what only one of them uses:
    // a backend has one kind of certificate, and the other kind's objects then stay unmapped
    const { http: first, 'https-ecdsa': ec, 'https-rsa': rsa } = all;
    return [
      ['start-up and shipping over http', order(first)],
      ['https: TLS handshake and chain verification', order([...ec].filter((f) => rsa.has(f) && !first.has(f)))],
      ['https with an ECDSA certificate only', order([...ec].filter((f) => !rsa.has(f) && !first.has(f)))],
      ['https with an RSA certificate only', order([...rsa].filter((f) => !ec.has(f) && !first.has(f)))],
    ];
  };
  const code = groupsOf('code');
  const data = groupsOf('data');
  const size = (files, prefix) => bin.sections.filter((s) => files.includes(s.file) && s.name.startsWith(prefix)).reduce((n, s) => n + s.size, 0);
  const kib = (n) => Math.round(n / 1024);
  const codeListed = code.flatMap(([, files]) => files);
  const dataListed = data.flatMap(([, files]) => files);
  let text = `/*
 * hot-layout.ld: the object files that the extension uses, placed next to each other (generated
 * by tests/hot-layout.mjs; regenerate after changing the code or the dependencies).
 *
 * Why: the kernel maps file pages "around" each page fault (fault-around: 64 KiB windows, whole
 * large folios on recent kernels), so a function that runs brings its neighbours into the
 * process's RSS. OpenSSL's code that a TLS handshake runs is spread over the whole of libcrypto:
 * in the archives' own order, shipping over https once mapped nearly all of the binary's code
 * (peak RSS 5.8 MiB; 3.9 MiB with this list, extension/README.md). Grouped, the windows cover the
 * objects that are used and little else. The linker cannot go finer than an object file (Debian's libcrypto.a is not
 * built with -ffunction-sections). Code and data are not changed, only moved: an object missing
 * from this list, or listed but not linked, is placed as usual.
 *
 * Code of ${codeListed.length} objects (${kib(size(codeListed, '.text'))} of ${kib(size(bin.files, '.text'))} KiB), read-only data of ${dataListed.length} (${kib(size(dataListed, '.rodata'))} of ${kib(size(bin.files, '.rodata'))} KiB of .rodata,
 * ${kib(size(dataListed, '.data.rel.ro'))} of ${kib(size(bin.files, '.data.rel.ro'))} KiB of .data.rel.ro).
 */
`;
  for (const [out, where, input, groups] of [
    ['.text.hot', 'AFTER .text', '.text .text.*', code],
    ['.rodata.hot', 'AFTER .rodata', '.rodata .rodata.*', data],
    ['.data.rel.ro.hot', 'BEFORE .data.rel.ro', '.data.rel.ro .data.rel.ro.*', data],
  ]) {
    text += `SECTIONS\n{\n    ${out} :\n    {\n`;
    for (const [title, files] of groups) {
      text += `        /* ${title}: ${files.length} objects */\n`;
      for (const f of files) text += `        ${pattern(f)}(${input})\n`;
    }
    text += `    }\n}\nINSERT ${where};\n`;
  }
  return { text, counts: `${code.map(([, files]) => files.length).join(' + ')} objects' code, ${data.map(([, files]) => files.length).join(' + ')} objects' data` };
}

const relinkable = existsSync(path.join(buildDir, 'CMakeCache.txt'));
let bin = load();
const ran = {};
for (const name of Object.keys(SCENARIOS)) ran[name] = functionsRun(await profile(name, 'callgrind'));
const used = Object.fromEntries(Object.keys(SCENARIOS).map((name) => [name, newUse()]));
for (let round = 0; round < ROUNDS; round++) {
  let added = 0;
  for (const name of Object.keys(SCENARIOS)) {
    addRan(bin, used[name], ran[name]);
    added += addFaults(bin, used[name], await profile(name, 'perf', round));
  }
  const { text, counts } = layout(bin, used);
  const changed = !existsSync(output) || readFileSync(output, 'utf8') !== text;
  writeFileSync(output, text);
  console.log(`round ${round + 1}: ${added} objects found by their page faults; ${counts} listed`);
  if (!changed || !relinkable) break;
  run('cmake', ['--build', buildDir, '--target', path.basename(binary)]);
  bin = load();
}
rmSync(dir, { recursive: true, force: true });
console.log(`${path.relative(process.cwd(), output)} written${relinkable ? `, ${path.relative(process.cwd(), binary)} relinked with it` : ''}`);
