// The TypeScript port of the recommendation engine, run on the cases of the backend's own unit
// test (backend/tests/unit/test_rules.c) so that `coldstart profile` and the server agree.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { globMatch, loadRules, parseRules, recommend, RulesError, versionInRange, type RuleTable } from '../../src/cli/rules';

const REPO_RULES = join(__dirname, '..', '..', '..', 'rules', 'recommendations.json');
const SHIPPED_RULES = join(__dirname, '..', '..', 'dist', 'recommendations.json');
const real = (): RuleTable => loadRules(REPO_RULES);

function entry(p50: number, version: string | null, seenIn: number): Record<string, unknown> {
  const m: Record<string, unknown> = { avg_load_time_ms: p50, p50_ms: p50, p95_ms: p50 * 2, p99_ms: p50 * 3, version };
  if (seenIn >= 0) m.seen_in = seenIn;
  return m;
}
const context = (ms: number) => ({ init_p50_ms: null, module_load_p50_ms: ms, cold_starts: 20 });
const one = (rules: RuleTable, name: string, p50: number, version: string | null, seenIn: number) =>
  recommend(rules, { [name]: entry(p50, version, seenIn) }, context(p50));

const RULE = (id: string, rest: string) => `{"id": "${id}", "issue": "i", "suggestion": "s", "evidence": "e", ${rest}}`;
const TABLE = (rules: string) => `{"version": 1, "min_module_ms": 10, "rules": [${rules}]}`;
const load = (text: string) => parseRules(JSON.parse(text), '/tmp/test_rules');

describe('the shipped rule table', () => {
  it('is the repository file, byte for byte (copied at build time)', () => {
    expect(readFileSync(SHIPPED_RULES, 'utf8')).toBe(readFileSync(REPO_RULES, 'utf8'));
  });

  it('loads and validates', () => {
    expect(real().rules.length).toBeGreaterThanOrEqual(20);
  });

  it('covers every required module', () => {
    const required: [string, string | null, string][] = [
      ['aws-sdk', '2.1692.0', 'aws-sdk-v2'],
      ['@aws-sdk/client-s3', '3.700.0', 'aws-sdk-v3-unbundled'],
      ['@aws-sdk/client-dynamodb', null, 'aws-sdk-v3-unbundled'],
      ['@smithy/smithy-client', null, 'smithy-unbundled'],
      ['@aws-sdk/credential-provider-node', '3.450.0', 'aws-credential-chain-eager'],
      ['moment', '2.30.1', 'moment'],
      ['lodash', '4.17.21', 'lodash-whole-package'],
      ['@prisma/client', '5.22.0', 'prisma-client'],
      ['.prisma/client', null, 'prisma-generated-client'],
      ['@prisma/engines', null, 'prisma-engines'],
      ['axios', '1.7.0', 'axios'],
      ['request', '2.88.2', 'request'],
      ['express', '4.21.0', 'express-on-lambda'],
      ['serverless-http', '3.2.0', 'serverless-http'],
      ['firebase-admin', '12.0.0', 'firebase-admin'],
      ['googleapis', '144.0.0', 'googleapis'],
      ['winston', '3.14.0', 'winston'],
      ['dd-trace', '5.0.0', 'datadog-tracer'],
      ['newrelic', '12.0.0', 'newrelic-agent'],
      ['@opentelemetry/sdk-node', null, 'opentelemetry'],
      ['@opentelemetry/instrumentation-http', null, 'opentelemetry'],
      ['@sentry/node', '8.0.0', 'sentry'],
      ['elastic-apm-node', '4.0.0', 'elastic-apm'],
      ['date-fns', '4.1.0', 'date-fns-barrel'],
      ['date-fns', null, 'date-fns-barrel'],
      ['lodash-es', '4.17.21', 'lodash-es-barrel'],
      ['@mui/icons-material', '6.1.0', 'mui-icons-barrel'],
      ['@mui/material', '6.1.0', 'mui-material-barrel'],
      ['rxjs', '7.8.1', 'rxjs-barrel'],
    ];
    const rules = real();
    for (const [module, version, id] of required) {
      const recs = one(rules, module, 200, version, 1);
      expect(recs.map((r) => r.rule_id), module).toEqual([id]);
      for (const field of ['issue', 'suggestion', 'evidence'] as const) expect(recs[0]![field].length).toBeGreaterThan(0);
    }
  });

  it('applies the credential chain rule only before the lazy release', () => {
    const rules = real();
    let recs = one(rules, '@aws-sdk/credential-provider-node', 100, '3.498.0', 1);
    expect(recs[0]).toMatchObject({ rule_id: 'aws-credential-chain-eager', potential_savings_ms: 60 });
    recs = one(rules, '@aws-sdk/credential-provider-node', 100, '3.499.0', 1);
    expect(recs[0]!.rule_id).toBe('aws-sdk-v3-unbundled');
    recs = one(rules, '@aws-sdk/credential-provider-node', 100, null, 1);
    expect(recs[0]!.rule_id).toBe('aws-sdk-v3-unbundled');
  });

  it('barrel imports: recognised by their loading cost, savings from it', () => {
    const rules = real();
    // a few subpath imports of date-fns cost a few ms: below the rule's 20 ms, and no generic advice either
    expect(one(rules, 'date-fns', 15, '4.1.0', 1)).toEqual([]);
    expect(one(rules, 'date-fns', 1435, '4.1.0', 1)[0]).toMatchObject({ rule_id: 'date-fns-barrel', potential_savings_ms: 1220 });
    const dateFns = one(rules, 'date-fns', 200, '4.1.0', 1)[0]!;
    expect(dateFns.issue).toContain('Node.js version');
    expect(dateFns.suggestion).toContain("'date-fns/addDays'");
    expect(one(rules, '@mui/icons-material', 400, null, 1)[0]).toMatchObject({ rule_id: 'mui-icons-barrel', potential_savings_ms: 380 });
    // rxjs 6 had no single index of this shape: only the generic advice
    expect(one(rules, 'rxjs', 200, '6.6.7', 1)[0]!.rule_id).toBe('large-module');
  });

  it('generic rules', () => {
    const rules = real();
    expect(one(rules, 'pdfkit', 150, '0.15.0', 1)[0]).toMatchObject({ rule_id: 'large-module', potential_savings_ms: 45 });
    expect(one(rules, 'pdfkit', 150, '0.15.0', 0.25)[0]).toMatchObject({ rule_id: 'large-module-sometimes-loaded', potential_savings_ms: 120 });
    expect(one(rules, 'pdfkit', 150, null, -1)[0]!.rule_id).toBe('large-module');
    expect(one(rules, 'pdfkit', 99.4, null, 0.1)).toEqual([]);
    expect(one(rules, 'moment', 400, '2.30.1', 0.25).map((r) => r.rule_id)).toEqual(['moment']);
  });

  it('own code dominates', () => {
    const rules = real();
    const modules = {
      './src/handlers/payment': entry(60, null, 1),
      './src/lib/db': entry(50, null, 1),
      './src/lib/tiny': entry(4, null, 1),
      uuid: entry(40, '9.0.0', 1),
    };
    const recs = recommend(rules, modules, context(154));
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ module: '(own code)', rule_id: 'own-code-dominates', potential_savings_ms: 46 });
    expect(recommend(rules, modules, context(228))).toEqual([]); // exactly half is not more than half
    expect(recommend(rules, modules, {})).toHaveLength(1);
    expect(recommend(rules, modules, null)).toHaveLength(1);
  });

  it('own code and a large own file', () => {
    const recs = recommend(real(), { './src/report': entry(300, null, 0.5) }, context(300));
    expect(recs.map((r) => [r.rule_id, r.potential_savings_ms])).toEqual([
      ['large-module-sometimes-loaded', 240],
      ['own-code-dominates', 120],
    ]);
  });

  it('ranking and output shape', () => {
    const modules = {
      moment: entry(50, '2.29.4', 1),
      axios: entry(100, '1.6.0', 1),
      request: entry(100, null, 1),
      'aws-sdk': entry(400, '2.1.0', 1),
      'left-pad': entry(30, '1.3.0', 1),
      winston: entry(9.99, '3.0.0', 1),
    };
    const recs = recommend(real(), modules, context(689.99));
    expect(recs.map((r) => [r.module, r.potential_savings_ms])).toEqual([
      ['aws-sdk', 280],
      ['axios', 90],
      ['request', 90],
      ['moment', 40],
    ]);
    for (const rec of recs) expect(Object.keys(rec).sort()).toEqual(['evidence', 'issue', 'module', 'potential_savings_ms', 'rule_id', 'suggestion']);
    expect(Object.keys(modules)).toHaveLength(6);
  });

  it('thresholds', () => {
    expect(one(real(), 'moment', 9.999, null, 1)).toEqual([]);
    expect(one(real(), 'moment', 10, null, 1)[0]!.potential_savings_ms).toBe(8);
  });

  it('bad inputs give empty arrays', () => {
    const rules = real();
    expect(recommend(rules, null, null)).toEqual([]);
    expect(recommend(rules, [], null)).toEqual([]);
    expect(recommend(undefined, null, null)).toEqual([]);
    expect(recommend(rules, { 'aws-sdk': { p50_ms: 'fast' }, moment: { p50_ms: -5 }, lodash: {}, axios: 3 }, null)).toEqual([]);
  });
});

describe('matching (the backend test table)', () => {
  const table = load(
    TABLE(
      [
        RULE('exact', '"match": {"module": "left-pad"}, "savings_share": 0.5'),
        RULE('scoped-glob', '"match": {"pattern": "@scope/*"}, "savings_share": 0.3'),
        RULE('infix-glob', '"match": {"pattern": "@scope/client-*-v2"}, "savings_share": 0.6'),
        RULE('ranged', '"match": {"module": "old-lib"}, "versions": ">=1.2.0 <2.0.0", "savings_share": 0.9'),
        RULE('picky', '"match": {"module": "picky"}, "min_ms": 50, "savings_share": 0.5'),
        RULE('picky-big', '"match": {"module": "picky-big"}, "min_ms": 500, "savings_share": 0.5'),
        RULE('tie-first', '"match": {"pattern": "tie-*"}, "savings_share": 0.5'),
        RULE('tie-second', '"match": {"pattern": "tie*"}, "savings_share": 0.5'),
        RULE('catch-all', '"match": {"generic": "large_module"}, "min_ms": 100, "savings_share": 0.1'),
      ].join(', '),
    ),
  );
  const matched = (name: string, p50: number, version: string | null = null) => one(table, name, p50, version, 1)[0]?.rule_id ?? '(none)';

  it('exact and glob', () => {
    expect(matched('left-pad', 20)).toBe('exact');
    expect(matched('left-pad-extra', 20)).toBe('(none)');
    expect(matched('left', 20)).toBe('(none)');
    expect(matched('@scope/anything', 20)).toBe('scoped-glob');
    expect(matched('@scope/deep/path', 20)).toBe('scoped-glob');
    expect(matched('@scopeX/anything', 20)).toBe('(none)');
    expect(matched('scope/anything', 20)).toBe('(none)');
    expect(matched('@scope/client-s3-v2', 20)).toBe('infix-glob');
    expect(matched('@scope/client-s3-v3', 20)).toBe('scoped-glob');
    expect(matched('tie-x', 20)).toBe('tie-first');
    expect(matched('tiex', 20)).toBe('tie-second');
  });

  it('version ranges', () => {
    expect(matched('old-lib', 20, '1.2.0')).toBe('ranged');
    expect(matched('old-lib', 20, '1.9.99')).toBe('ranged');
    expect(matched('old-lib', 20, '1.5.0-beta.3')).toBe('ranged');
    expect(matched('old-lib', 20, '1.1.9')).toBe('(none)');
    expect(matched('old-lib', 20, '2.0.0')).toBe('(none)');
    expect(matched('old-lib', 20, null)).toBe('(none)');
    expect(matched('old-lib', 20, 'latest')).toBe('(none)');
    expect(matched('old-lib', 200, '2.1.0')).toBe('catch-all');
    expect(matched('old-lib', 200, null)).toBe('catch-all');
    expect(matched('old-lib', 200, '1.3.0')).toBe('ranged');
  });

  it('rule thresholds', () => {
    expect(matched('picky', 49.9)).toBe('(none)');
    expect(matched('picky', 50)).toBe('picky');
    expect(matched('picky-big', 200)).toBe('(none)');
    expect(matched('picky-big', 500)).toBe('picky-big');
    expect(matched('left-pad', 9.5)).toBe('(none)');
  });

  it('savings arithmetic (half away from zero)', () => {
    for (const [p50, expected] of [
      [10, 5],
      [13.1, 7],
      [25, 13],
      [24.9, 12],
      [1234.4, 617],
      [11, 6],
    ] as const)
      expect(one(table, 'left-pad', p50, null, 1)[0]!.potential_savings_ms, `p50 ${p50}`).toBe(expected);
    expect(one(table, 'old-lib', 33.3, '1.2.3', 1)[0]!.potential_savings_ms).toBe(30);
  });

  it('glob', () => {
    expect(globMatch('a*', 'a')).toBe(true);
    expect(globMatch('*b*c', 'xbyc')).toBe(true);
    expect(globMatch('*b*c', 'xbycd')).toBe(false);
  });
});

describe('semver', () => {
  it('ranges', () => {
    const cases: [string | null, string | null, number][] = [
      ['3.0.0', '>=3.0.0 <3.499.0', 1],
      ['3.498.9', '>=3.0.0 <3.499.0', 1],
      ['3.499.0', '>=3.0.0 <3.499.0', 0],
      ['2.1692.0', '>=3.0.0 <3.499.0', 0],
      ['3.10.0', '>3.9.99', 1],
      ['3.9.99', '>3.9.99', 0],
      ['1.2.3', '<=1.2.3', 1],
      ['1.2.4', '<=1.2.3', 0],
      ['1.2.3', '=1.2.3', 1],
      ['1.2.3', '=1.2', 0],
      ['1.2', '=1.2.0', 1],
      ['v4', '>=4.0.0  <5', 1],
      ['4.0.0-rc.1+build.5', '=4.0.0', 1],
      ['10.0.0', '>9.0.0', 1],
      ['abc', '>=1.0.0', -1],
      ['', '>=1.0.0', -1],
      ['1.2.3.4', '>=1.0.0', -1],
      ['1..2', '>=1.0.0', -1],
      ['1.2.3', '', -1],
      ['1.2.3', '1.2.3', -1],
      ['1.2.3', '~1.2.3', -1],
      ['1.2.3', '>= 1.2.3', -1],
      ['1.2.3', '>=1 <2 >0 <=3 =1', -1],
      ['99999999999.0.0', '>=1.0.0', -1],
      [null, '>=1.0.0', -1],
      ['1.0.0', null, -1],
    ];
    for (const [version, range, expected] of cases) expect(versionInRange(version, range), `${version} ${range}`).toBe(expected);
  });
});

describe('validation', () => {
  const rejected = (text: string, message: string) => {
    expect(() => load(text)).toThrow(RulesError);
    expect(() => load(text)).toThrow(message);
  };
  it('rejects what the backend rejects', () => {
    rejected('[]', 'the top level must be an object');
    rejected('{"version": 2, "min_module_ms": 10, "rules": []}', 'version must be 1');
    rejected(TABLE(''), 'rules must hold between 1 and 1000 rules');
    rejected('{"version": 1, "min_module_ms": 10, "rules": [], "x": 1}', 'unknown key "x"');
    rejected(TABLE(RULE('a', '"match": {"module": "m"}, "savings_share": 0')), 'rule 0 ("a"): savings_share must be in (0, 1]');
    rejected(TABLE(RULE('a', '"match": {"pattern": "m"}, "savings_share": 0.5')), "match.pattern must contain '*'");
    rejected(TABLE(RULE('a', '"match": {"module": "m"}, "savings_share": 0.5, "foo": 1')), 'rule 0 ("a"): unknown key "foo"');
    rejected(TABLE(RULE('A', '"match": {"module": "m"}, "savings_share": 0.5')), 'rule 0: id must be a slug');
    rejected(TABLE(RULE('a', '"match": {"module": "m"}, "versions": ">=3.x", "savings_share": 0.5')), 'versions: cannot parse ">=3.x"');
    rejected(TABLE(RULE('a', '"match": {"generic": "big"}, "savings_share": 0.5')), 'unknown generic rule "big"');
    rejected(TABLE(RULE('a', '"match": {"generic": "large_module"}, "versions": ">=1", "savings_share": 0.5')), 'versions is only allowed');
    rejected(TABLE(RULE('a', '"match": {"module": "m"}, "min_ms": 5, "savings_share": 0.5')), 'min_ms must be between min_module_ms (10)');
    rejected(
      TABLE([RULE('a', '"match": {"module": "m"}, "savings_share": 0.5'), RULE('a', '"match": {"module": "n"}, "savings_share": 0.5')].join(',')),
      'rule 1 ("a"): id "a" duplicates rule 0',
    );
    rejected(TABLE(RULE('a', '"match": {"generic": "own_code_dominates"}, "seen_in_below": 0.5, "savings_share": 0.5')), 'seen_in_below does not apply');
  });
});

describe('runtime (the backend test rules_matching.runtime)', () => {
  const table = load(
    TABLE(
      [
        RULE('py-yaml', '"match": {"module": "PyYAML"}, "runtime": "python", "savings_share": 0.5'),
        RULE('any-yaml', '"match": {"module": "yaml"}, "savings_share": 0.5'),
        RULE('py-large', '"match": {"generic": "large_module"}, "runtime": "python", "savings_share": 0.1'),
      ].join(','),
    ),
  );
  const matched = (name: string, runtime: string | null): string =>
    recommend(table, { [name]: entry(40, null, 1) }, { ...context(40), runtime })[0]?.rule_id ?? '(none)';
  it('applies a rule with a runtime only to functions whose runtime starts with it', () => {
    expect(matched('PyYAML', 'python3.12')).toBe('py-yaml');
    expect(matched('PyYAML', 'nodejs20.x')).toBe('(none)');
    expect(matched('PyYAML', null)).toBe('(none)');
    expect(matched('yaml', 'nodejs20.x')).toBe('any-yaml');
    expect(matched('yaml', 'python3.12')).toBe('any-yaml');
    expect(matched('boto3', 'python3.9')).toBe('py-large');
    expect(matched('boto3', 'nodejs22.x')).toBe('(none)');
  });
  it('rejects what the backend rejects', () => {
    expect(() => load(TABLE(RULE('a', '"match": {"module": "x"}, "runtime": "", "savings_share": 0.5')))).toThrow('rule 0 ("a"): runtime must not be empty');
    expect(() => load(TABLE(RULE('a', '"match": {"module": "x"}, "runtime": 3, "savings_share": 0.5')))).toThrow('runtime');
  });
});
