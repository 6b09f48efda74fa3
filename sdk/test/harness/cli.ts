// Runs `node dist/cli.cjs ...` as a user would, in its own session at raised priority when allowed
// (as the timing fixtures do, see runner.mjs): the profiled processes it starts inherit both, so a
// busy shared machine disturbs the measurements less.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { NODE, SDK_ROOT } from './helpers';

export const CLI = join(SDK_ROOT, 'dist', 'cli.cjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], env: Record<string, string | undefined> = {}, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries({ PATH: process.env.PATH, HOME: process.env.HOME, ...env })) if (v !== undefined) clean[k] = v;
    const child = spawn(NODE, [CLI, ...args], { cwd, env: clean, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid !== undefined) {
      try {
        writeFileSync(`/proc/${child.pid}/autogroup`, '-10');
      } catch {}
      try {
        setPriority(child.pid, -10);
      } catch {}
    }
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A measured time against a busy-wait's ground truth: a loaded machine can only add time. */
export function nearEnough(actual: number, expected: number, tolerance: number): string | undefined {
  if (actual < expected - tolerance) return `${actual} < ${expected} - ${tolerance}`;
  if (actual > expected * 2 + 20) return `${actual} > ${expected} x 2 + 20`;
  return undefined;
}
