// coldstart profile's aggregation and text output, without processes.
import { describe, expect, it } from 'vitest';
import { aggregate, compareProfiles, spread } from '../../src/cli/aggregate';
import type { ProfileRun } from '../../src/cli/profile';
import { painter, renderText } from '../../src/cli/render';
import { parseRules } from '../../src/cli/rules';

const rules = parseRules({
  version: 1,
  min_module_ms: 10,
  rules: [
    {
      id: 'slow-lib',
      match: { module: 'slow-lib' },
      issue: 'It is slow.',
      suggestion: 'Drop it.',
      evidence: 'measured',
      savings_share: 0.5,
    },
  ],
});

function run(load: number, slow: number, extra?: number): ProfileRun {
  const timings: Record<string, number> = { './index': load - slow - (extra ?? 0), 'slow-lib': slow };
  const children = [{ name: 'slow-lib', version: '1.0.0', self_ms: slow, total_ms: slow }];
  if (extra !== undefined) {
    timings.extra = extra;
    children.push({ name: 'extra', version: '2.0.0', self_ms: extra, total_ms: extra });
  }
  return {
    init_ms: load + 50,
    load_ms: load,
    sdk_overhead_ms: 1,
    modules: 3,
    memory_used_mb: 50,
    esm_timing: 'off',
    module_timings: timings,
    module_tree: {
      load_ms: load,
      modules: 3,
      esm_timing: 'off',
      coverage: 'preload',
      truncated: false,
      children: [{ name: './index', self_ms: load - slow, total_ms: load, children } as any],
    },
    started_at: new Date(0).toISOString(),
  };
}

const meta = { handler: 'index.js', taskRoot: '/task', memory: 512, node: 'v22.0.0' };

describe('profile aggregation', () => {
  it('spread: median and quartiles by linear interpolation', () => {
    expect(spread([4, 1, 3, 2])).toEqual({ median: 2.5, p25: 1.75, p75: 3.25, min: 1, max: 4 });
    expect(spread([7])).toEqual({ median: 7, p25: 7, p75: 7, min: 7, max: 7 });
  });

  it('medians per module, seen_in, versions, and the rules applied to the medians', () => {
    const profile = aggregate([run(100, 40), run(110, 44, 2), run(120, 48)], meta, rules);
    expect(profile.load_ms.median).toBe(110);
    expect(profile.modules.find((m) => m.name === 'slow-lib')).toEqual({ name: 'slow-lib', version: '1.0.0', self_ms: 44, seen_in: 1 });
    expect(profile.modules.find((m) => m.name === 'extra')).toEqual({ name: 'extra', version: '2.0.0', self_ms: 0, seen_in: 0.333 });
    expect(profile.recommendations).toEqual([
      {
        module: 'slow-lib',
        rule_id: 'slow-lib',
        issue: 'It is slow.',
        suggestion: 'Drop it.',
        evidence: 'measured',
        potential_savings_ms: 22,
      },
    ]);
    expect(profile.tree[0]!.children!.map((c) => c.name)).toEqual(['slow-lib', 'extra']);
  });

  it('compare: per-module deltas, largest first', () => {
    const before = aggregate([run(100, 40)], meta, rules);
    const after = aggregate([run(130, 70, 5)], meta, rules);
    const c = compareProfiles(before, after);
    expect(c.load_ms).toEqual({ before: 100, after: 130, delta: 30, percent: 30 });
    expect(c.modules.map((m) => [m.name, m.delta_ms])).toEqual([
      ['slow-lib', 30],
      ['./index', -5], // equal sizes: by name
      ['extra', 5],
    ]);
  });

  it('colours only when asked, and fits 80 columns either way', () => {
    const profile = aggregate([run(100, 40, 3)], { ...meta, handler: 'a/very/long/path/'.repeat(8) + 'index.js' }, rules);
    profile.tree[0]!.name = './' + 'deeply-nested-directory/'.repeat(5) + 'file';
    const plain = renderText(profile, 1, painter(false));
    const coloured = renderText(profile, 1, painter(true));
    expect(plain).not.toContain('\x1b[');
    expect(coloured).toContain('\x1b[31m'); // slow-lib is 40 % of the module load: red
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the ANSI colour codes the text output uses
    expect(coloured.replace(/\x1b\[\d+m/g, '')).toBe(plain);
    for (const line of plain.split('\n').slice(2)) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(plain).toContain('…');
  });
});
