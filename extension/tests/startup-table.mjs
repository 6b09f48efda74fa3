// Formats startup_bench's rows (JSON lines, several builds interleaved) as the Markdown start-up
// section of RESULTS.md: one column per build, median and p90 of each figure.
// Usage: node tests/startup-table.mjs <rows.jsonl> <label=binary>... (labels in column order)
import { readFileSync } from 'node:fs';
import os from 'node:os';

const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const builds = process.argv.slice(3).map((a) => {
  const i = a.lastIndexOf('=');
  return { label: a.slice(0, i), binary: a.slice(i + 1) };
});
const q = (xs, p) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};
const cell = (binary, key, digits) => {
  const xs = rows.filter((r) => r.binary === binary).map((r) => r[key]);
  return `${q(xs, 0.5).toFixed(digits)} / ${q(xs, 0.9).toFixed(digits)}`;
};
const lines = [
  ['**posix_spawn() to register answered (ms)**', 'spawn_to_registered_ms', 2, true],
  ['posix_spawn() to the register request read by the API (ms)', 'spawn_to_request_ms', 2],
  ['posix_spawn() to main() (ms): kernel exec, loader, libc start-up', 'spawn_to_main_ms', 2],
  ['the same for a static program that does nothing (ms): the floor', 'floor_ms', 2],
  ['main() to register answered (ms)', 'register_ms', 2],
  ['posix_spawn() to subscribed and asking for the first event (ms)', 'spawn_to_ready_ms', 2],
  ['CPU from main() to ready (µs, user+sys)', 'cpu_us', 0],
  ['**peak RSS at ready (KiB, VmHWM)**', 'max_rss_kb', 0, true],
  ['minor page faults to ready', 'page_faults', 0],
];
const perBuild = rows.length / Math.max(1, builds.length);
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const cpu = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];
console.log(`## Start-up

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${os.cpus().length} × ${cpu}, Linux ${os.release()}, load average at the end ${load}${process.env.BENCH_RT === '1' ? ', under SCHED_FIFO (`chrt -f 10`)' : ''}.
${perBuild} starts of each build, interleaved (one of each per round), median / p90.

| | ${builds.map((b) => b.label).join(' | ')} |
|---|${builds.map(() => '---').join('|')}|
${lines.map(([name, key, digits, bold]) => `| ${name} | ${builds.map((b) => (bold ? `**${cell(b.binary, key, digits)}**` : cell(b.binary, key, digits))).join(' | ')} |`).join('\n')}

\`extension/tests/startup_bench.c\` starts the extension as Lambda's init does (posix_spawn, i.e.
vfork+exec, as Go's os/exec) and answers the Extensions API from a poll() loop in C: register,
the telemetry subscription, and event/next with SHUTDOWN. The times are wall clock from just
before posix_spawn(); main() and the register answer are stamped by the extension itself (its
"registered" log line). The floor is a static program whose main() only prints the time: the
kernel's exec on this VM, which no extension can go below.
`);
