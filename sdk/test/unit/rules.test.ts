// The TypeScript port of the recommendation engine, run on the test vectors the backend's own unit
// test runs too (rules/test-vectors.json, read by backend/tests/unit/test_rules.c), so that
// `coldstart profile` and the server agree. What only this port has (the shipped copy, globMatch,
// a missing table) is tested here directly.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { globMatch, loadRules, parseRules, recommend, RulesError, versionInRange, type RuleTable } from '../../src/cli/rules';

const REPO_RULES = join(__dirname, '..', '..', '..', 'rules', 'recommendations.json');
const SHIPPED_RULES = join(__dirname, '..', '..', 'dist', 'recommendations.json');
const VECTORS = join(__dirname, '..', '..', '..', 'rules', 'test-vectors.json');
const real = (): RuleTable => loadRules(REPO_RULES);

interface Vectors {
  tables: Record<string, unknown>;
  recommend: {
    case: string;
    table: string;
    modules: unknown;
    context: unknown;
    expect: [string, string, number][];
    texts?: { at: number; field: 'issue' | 'suggestion' | 'evidence'; contains: string }[];
  }[];
  version_in_range: [string | null, string | null, number][];
  rejected: { case: string; table: unknown; error: string }[];
}
const vectors = JSON.parse(readFileSync(VECTORS, 'utf8')) as Vectors;

describe('the shipped rule table', () => {
  it('is the repository file, byte for byte (copied at build time)', () => {
    expect(readFileSync(SHIPPED_RULES, 'utf8')).toBe(readFileSync(REPO_RULES, 'utf8'));
  });

  it('loads and validates', () => {
    expect(real().rules.length).toBeGreaterThanOrEqual(20);
  });
});

describe('test vectors (rules/test-vectors.json)', () => {
  const tables: Record<string, RuleTable> = { real: real() };
  for (const [name, table] of Object.entries(vectors.tables)) tables[name] = parseRules(table, `test-vectors.json tables.${name}`);

  it('holds the cases of both engines', () => {
    expect(vectors.recommend.length).toBeGreaterThanOrEqual(90);
    expect(vectors.version_in_range.length).toBeGreaterThanOrEqual(26);
    expect(vectors.rejected.length).toBeGreaterThanOrEqual(34);
  });

  it.each(vectors.recommend.map((v) => [v.case, v] as const))('recommend: %s', (_, v) => {
    const table = tables[v.table];
    expect(table, `table ${v.table}`).toBeDefined();
    const before = JSON.stringify(v.modules);
    const recs = recommend(table, v.modules as never, v.context as never);
    expect(recs.map((r) => [r.module, r.rule_id, r.potential_savings_ms])).toEqual(v.expect);
    for (const rec of recs) {
      expect(Object.keys(rec).sort()).toEqual(['evidence', 'issue', 'module', 'potential_savings_ms', 'rule_id', 'suggestion']);
      for (const field of ['issue', 'suggestion', 'evidence'] as const) expect(rec[field].length, field).toBeGreaterThan(0);
      expect(Number.isInteger(rec.potential_savings_ms)).toBe(true);
    }
    for (const text of v.texts ?? []) expect(recs[text.at]![text.field]).toContain(text.contains);
    expect(JSON.stringify(v.modules), 'the input is not changed').toBe(before);
  });

  it.each(vectors.version_in_range.map((v) => [`${v[0]} ${v[1]}`, v] as const))('version in range: %s', (_, [version, range, expected]) => {
    expect(versionInRange(version, range)).toBe(expected);
  });

  it.each(vectors.rejected.map((v) => [v.case, v] as const))('rejected: %s', (_, v) => {
    let message = '';
    try {
      parseRules(v.table as never, '/tmp/test_rules');
    } catch (e) {
      expect(e).toBeInstanceOf(RulesError);
      message = (e as Error).message;
    }
    expect(message).toContain(v.error);
    expect(message.startsWith('/tmp/test_rules: ')).toBe(true);
    expect(message).not.toContain('\n');
  });
});

describe('only in this port', () => {
  it('a missing rule table', () => {
    expect(recommend(undefined, null, null)).toEqual([]);
  });

  it('glob', () => {
    expect(globMatch('a*', 'a')).toBe(true);
    expect(globMatch('*b*c', 'xbyc')).toBe(true);
    expect(globMatch('*b*c', 'xbycd')).toBe(false);
  });
});
