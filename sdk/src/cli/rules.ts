// The recommendation rule table (rules/recommendations.json), loaded, validated and applied with
// exactly the semantics of the backend's engine (backend/src/rules.c): same thresholds, same
// matching (exact name, glob where '*' matches any run of characters, generic rules), same version
// ranges, same choice of the best rule per module, same rounding (half away from zero) and ranking
// (savings descending, then module name, then rule id, compared as bytes). A copy of the file
// ships in the package as dist/recommendations.json (copied at build time).

const MAX_RULES = 1000;
const MAX_ID_LENGTH = 64;
const MAX_NAME_LENGTH = 214;
const MAX_TEXT_LENGTH = 2000;
const MAX_COMPARATORS = 4;
const MAX_VERSION_PART = 999999999;
const MAX_MODULE_MS = 1e9;
const OWN_CODE_PREFIX = './';
export const OWN_CODE_NAME = '(own code)';
const OWN_CODE_DOMINANT_SHARE = 0.5;

type MatchKind = 'module' | 'pattern' | 'large_module' | 'own_code_dominates';
type Op = '=' | '<' | '<=' | '>' | '>=';
type Semver = [number, number, number];
interface Comparator {
  op: Op;
  version: Semver;
}

export interface Rule {
  id: string;
  kind: MatchKind;
  matchValue: string | undefined;
  comparators: Comparator[];
  issue: string;
  suggestion: string;
  evidence: string;
  savingsShare: number;
  minMs: number;
  seenInBelow: number;
  /** applies only to functions whose runtime starts with this ("python", "nodejs"); undefined: any */
  runtime: string | undefined;
}

export interface RuleTable {
  minModuleMs: number;
  rules: Rule[];
}

/** One module's figures, as the server gives them to its engine. */
export interface ModuleFigures {
  p50_ms?: unknown;
  version?: unknown;
  seen_in?: unknown;
}

export interface Recommendation {
  module: string;
  rule_id: string;
  issue: string;
  suggestion: string;
  evidence: string;
  potential_savings_ms: number;
}

export class RulesError extends Error {}

// ---- semver --------------------------------------------------------------------------------

function parseSemver(text: string): Semver | undefined {
  const m = /^[vV]?(\d{1,9})(?:\.(\d{1,9})(?:\.(\d{1,9}))?)?(?:[-+].*)?$/s.exec(text);
  if (m === null) return undefined;
  const parts: Semver = [Number(m[1]), m[2] === undefined ? 0 : Number(m[2]), m[3] === undefined ? 0 : Number(m[3])];
  return parts.every((p) => p <= MAX_VERSION_PART) ? parts : undefined;
}

function compareSemver(a: Semver, b: Semver): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

/** Comparators of a range, or undefined when it does not parse (empty counts as not parsing). */
function parseRange(range: string): Comparator[] | undefined {
  const out: Comparator[] = [];
  for (const word of range.split(' ')) {
    if (word === '') continue;
    if (out.length === MAX_COMPARATORS) return undefined;
    const m = /^(>=|<=|>|<|=)(.*)$/s.exec(word);
    if (m === null || m[2] === '') return undefined;
    const version = parseSemver(m[2]!);
    if (version === undefined) return undefined;
    out.push({ op: m[1] as Op, version });
  }
  return out.length > 0 ? out : undefined;
}

function satisfies(v: Semver, comparators: Comparator[]): boolean {
  return comparators.every(({ op, version }) => {
    const cmp = compareSemver(v, version);
    switch (op) {
      case '=':
        return cmp === 0;
      case '<':
        return cmp < 0;
      case '<=':
        return cmp <= 0;
      case '>':
        return cmp > 0;
      case '>=':
        return cmp >= 0;
    }
  });
}

/** 1 if version satisfies every comparator of range, 0 if not, -1 if either does not parse. */
export function versionInRange(version: string | null | undefined, range: string | null | undefined): number {
  if (typeof version !== 'string' || typeof range !== 'string') return -1;
  const comparators = parseRange(range);
  const v = parseSemver(version);
  if (comparators === undefined || v === undefined) return -1;
  return satisfies(v, comparators) ? 1 : 0;
}

// ---- glob ----------------------------------------------------------------------------------

export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    if (pattern[p] === '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.length && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (star >= 0) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

// ---- loading -------------------------------------------------------------------------------

type FieldType = 'string' | 'number' | 'integer' | 'object' | 'array';
const TOP_FIELDS: [string, FieldType, boolean][] = [
  ['version', 'integer', true],
  ['min_module_ms', 'number', true],
  ['rules', 'array', true],
];
const RULE_FIELDS: [string, FieldType, boolean][] = [
  ['id', 'string', true],
  ['match', 'object', true],
  ['versions', 'string', false],
  ['issue', 'string', true],
  ['suggestion', 'string', true],
  ['evidence', 'string', true],
  ['savings_share', 'number', true],
  ['min_ms', 'number', false],
  ['seen_in_below', 'number', false],
  ['runtime', 'string', false],
];
const TYPE_NAMES: Record<FieldType, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  object: 'an object',
  array: 'an array',
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasType(v: unknown, type: FieldType): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
  }
}

function checkFields(obj: Record<string, unknown>, fields: [string, FieldType, boolean][]): string | undefined {
  for (const key of Object.keys(obj)) if (!fields.some(([name]) => name === key)) return `unknown key "${key.slice(0, 64)}"`;
  for (const [name, type, required] of fields) {
    const value = obj[name];
    if (value === undefined) {
      if (required) return `${name} is required`;
      continue;
    }
    if (!hasType(value, type)) return `${name} must be ${TYPE_NAMES[type]}`;
    if (type === 'string' && value === '') return `${name} must not be empty`;
    if (type === 'number' && !Number.isFinite(value)) return `${name} must be a finite number`;
  }
  return undefined;
}

const validId = (id: string): boolean => id.length <= MAX_ID_LENGTH && /^[a-z0-9][a-z0-9-]*$/.test(id);

/** Validates a parsed table as the backend does; throws RulesError with a one-line message. */
export function parseRules(document: unknown, path = 'recommendations.json'): RuleTable {
  const fail = (message: string): never => {
    throw new RulesError(`${path}: ${message}`);
  };
  if (!isObject(document)) return fail('the top level must be an object');
  const top = checkFields(document, TOP_FIELDS);
  if (top !== undefined) fail(top);
  if (document.version !== 1) fail('version must be 1');
  const minModuleMs = document.min_module_ms as number;
  if (minModuleMs < 0 || minModuleMs > MAX_MODULE_MS) fail(`min_module_ms must be between 0 and ${MAX_MODULE_MS}`);
  const items = document.rules as unknown[];
  if (items.length === 0 || items.length > MAX_RULES) fail(`rules must hold between 1 and ${MAX_RULES} rules`);
  const rules: Rule[] = [];
  items.forEach((item, index) => {
    const ruleFail = (id: string | undefined, message: string): never =>
      fail(id !== undefined ? `rule ${index} ("${id}"): ${message}` : `rule ${index}: ${message}`);
    if (!isObject(item)) return ruleFail(undefined, 'must be an object');
    const id = typeof item.id === 'string' && item.id !== '' ? item.id : undefined;
    if (id !== undefined && (id.includes('\0') || !validId(id)))
      ruleFail(undefined, `id must be a slug of at most ${MAX_ID_LENGTH} characters ([a-z0-9-])`);
    const bad = checkFields(item, RULE_FIELDS);
    if (bad !== undefined) ruleFail(id, bad);
    const previous = rules.findIndex((r) => r.id === id);
    if (previous >= 0) ruleFail(id, `id "${id}" duplicates rule ${previous}`);
    const match = item.match as Record<string, unknown>;
    const keys = Object.keys(match);
    if (keys.length !== 1) ruleFail(id, 'match must have exactly one of "module", "pattern", "generic"');
    const key = keys[0]!;
    if (key !== 'module' && key !== 'pattern' && key !== 'generic')
      ruleFail(id, `match: unknown key "${key.slice(0, 64)}" (expected module, pattern or generic)`);
    const text = match[key];
    if (typeof text !== 'string' || text === '') return ruleFail(id, `match.${key} must be a non-empty string`);
    let kind: MatchKind;
    let matchValue: string | undefined;
    if (key === 'generic') {
      if (text !== 'large_module' && text !== 'own_code_dominates')
        ruleFail(id, `match.generic: unknown generic rule "${text.slice(0, 64)}" (expected large_module or own_code_dominates)`);
      kind = text as MatchKind;
    } else {
      if (Buffer.byteLength(text) > MAX_NAME_LENGTH || text.includes('\0')) ruleFail(id, `match.${key} is too long or contains a NUL`);
      if (key === 'pattern' && !text.includes('*')) ruleFail(id, "match.pattern must contain '*' (use match.module for an exact name)");
      kind = key as MatchKind;
      matchValue = text;
    }
    for (const field of ['issue', 'suggestion', 'evidence'] as const)
      if (Buffer.byteLength(item[field] as string) > MAX_TEXT_LENGTH) ruleFail(id, `${field} is longer than ${MAX_TEXT_LENGTH} characters`);
    const savingsShare = item.savings_share as number;
    if (!(savingsShare > 0 && savingsShare <= 1)) ruleFail(id, 'savings_share must be in (0, 1]');
    let comparators: Comparator[] = [];
    if (item.versions !== undefined) {
      if (kind === 'large_module' || kind === 'own_code_dominates')
        ruleFail(id, 'versions is only allowed with match.module or match.pattern');
      const parsed = parseRange(item.versions as string);
      if (parsed === undefined)
        ruleFail(
          id,
          `versions: cannot parse "${(item.versions as string).slice(0, 64)}" (expected up to ${MAX_COMPARATORS} space-separated comparators such as ">=3.0.0 <3.499.0")`,
        );
      comparators = parsed!;
    }
    let minMs = minModuleMs;
    if (item.min_ms !== undefined) {
      minMs = item.min_ms as number;
      if (minMs < minModuleMs || minMs > MAX_MODULE_MS)
        ruleFail(id, `min_ms must be between min_module_ms (${minModuleMs}) and ${MAX_MODULE_MS}`);
    }
    let seenInBelow = 0;
    if (item.seen_in_below !== undefined) {
      if (kind === 'own_code_dominates') ruleFail(id, 'seen_in_below does not apply to own_code_dominates');
      seenInBelow = item.seen_in_below as number;
      if (!(seenInBelow > 0 && seenInBelow <= 1)) ruleFail(id, 'seen_in_below must be in (0, 1]');
    }
    let runtime: string | undefined;
    if (item.runtime !== undefined) {
      runtime = item.runtime as string;
      if (runtime.length === 0 || runtime.length > 50) ruleFail(id, 'runtime must be 1 to 50 characters (e.g. "python")');
    }
    rules.push({
      id: id!,
      kind,
      matchValue,
      comparators,
      issue: item.issue as string,
      suggestion: item.suggestion as string,
      evidence: item.evidence as string,
      savingsShare,
      minMs,
      seenInBelow,
      runtime,
    });
  });
  return { minModuleMs, rules };
}

/** Reads and validates a rule file (JSON syntax errors and duplicate keys are reported too). */
export function loadRules(path: string): RuleTable {
  const { readFileSync } = require('node:fs') as typeof import('node:fs');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RulesError(`${path}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new RulesError(`${path}: ${(error as Error).message}`);
  }
  return parseRules(document, path);
}

// ---- applying ------------------------------------------------------------------------------

/** round(x), half away from zero, as C's llround. */
const llround = (x: number): number => (x < 0 ? -Math.round(-x) : Math.round(x));

/** strcmp on the UTF-8 bytes, as the C engine orders names. */
const byteCompare = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

function moduleP50(entry: unknown): number {
  if (!isObject(entry)) return -1;
  const p50 = entry.p50_ms;
  if (typeof p50 !== 'number') return -1;
  return Number.isFinite(p50) && p50 >= 0 && p50 <= MAX_MODULE_MS ? p50 : -1;
}

function specificRuleMatches(r: Rule, name: string, version: string | undefined): boolean {
  const nameMatches = r.kind === 'module' ? r.matchValue === name : globMatch(r.matchValue!, name);
  if (!nameMatches) return false;
  if (r.comparators.length === 0) return true;
  const v = version === undefined ? undefined : parseSemver(version);
  return v !== undefined && satisfies(v, r.comparators);
}

/** Whether the rule applies to a function of this runtime (undefined: unknown, only rules without one). */
function runtimeApplies(r: Rule, runtime: string | undefined): boolean {
  if (r.runtime === undefined) return true;
  return runtime?.startsWith(r.runtime) === true;
}

function seenInHolds(r: Rule, entry: Record<string, unknown>): boolean {
  if (r.seenInBelow <= 0) return true;
  return typeof entry.seen_in === 'number' && entry.seen_in < r.seenInBelow;
}

interface Best {
  rule: Rule | undefined;
  savings: number;
}

function offer(r: Rule, ms: number, best: Best): void {
  if (ms < r.minMs) return;
  const savings = llround(ms * r.savingsShare);
  if (best.rule === undefined || savings > best.savings) {
    best.rule = r;
    best.savings = savings;
  }
}

function bestRuleForModule(table: RuleTable, name: string, entry: Record<string, unknown>, p50: number, runtime: string | undefined): Best {
  const version = typeof entry.version === 'string' ? entry.version : undefined;
  const best: Best = { rule: undefined, savings: 0 };
  let matchedSpecific = false;
  for (const r of table.rules) {
    if (
      (r.kind === 'module' || r.kind === 'pattern') &&
      runtimeApplies(r, runtime) &&
      specificRuleMatches(r, name, version) &&
      seenInHolds(r, entry)
    ) {
      matchedSpecific = true;
      offer(r, p50, best);
    }
  }
  if (matchedSpecific) return best;
  for (const r of table.rules) if (r.kind === 'large_module' && runtimeApplies(r, runtime) && seenInHolds(r, entry)) offer(r, p50, best);
  return best;
}

/**
 * Recommendations for one function: `modules` maps module_timings keys to {p50_ms, version,
 * seen_in}; `context.runtime` the function's runtime ("python3.12": rules with a `runtime` apply
 * only when it starts with theirs); `context.module_load_p50_ms` is the function's module-load p50 (when absent or not
 * positive, the sum of the modules' p50s). Same result as csa_rules_recommend.
 */
export function recommend(
  table: RuleTable | undefined,
  modules: unknown,
  context?: { module_load_p50_ms?: unknown; runtime?: unknown } | null,
): Recommendation[] {
  if (table === undefined || !isObject(modules)) return [];
  const runtime = isObject(context) && typeof context.runtime === 'string' ? context.runtime : undefined;
  const candidates: { module: string; rule: Rule; savings: number }[] = [];
  let ownCodeMs = 0;
  let allModulesMs = 0;
  for (const [name, entry] of Object.entries(modules)) {
    const p50 = moduleP50(entry);
    if (p50 < 0) continue;
    allModulesMs += p50;
    if (name.startsWith(OWN_CODE_PREFIX)) ownCodeMs += p50;
    if (p50 < table.minModuleMs) continue;
    const best = bestRuleForModule(table, name, entry as Record<string, unknown>, p50, runtime);
    if (best.rule !== undefined) candidates.push({ module: name, rule: best.rule, savings: best.savings });
  }
  const given = isObject(context) ? context.module_load_p50_ms : undefined;
  const moduleLoadMs = typeof given === 'number' && given > 0 ? given : allModulesMs;
  if (ownCodeMs > 0 && ownCodeMs >= table.minModuleMs && ownCodeMs > OWN_CODE_DOMINANT_SHARE * moduleLoadMs) {
    const best: Best = { rule: undefined, savings: 0 };
    for (const r of table.rules) if (r.kind === 'own_code_dominates' && runtimeApplies(r, runtime)) offer(r, ownCodeMs, best);
    if (best.rule !== undefined) candidates.push({ module: OWN_CODE_NAME, rule: best.rule, savings: best.savings });
  }
  candidates.sort((x, y) => {
    if (x.savings !== y.savings) return x.savings > y.savings ? -1 : 1;
    return byteCompare(x.module, y.module) || byteCompare(x.rule.id, y.rule.id);
  });
  return candidates.map((c) => ({
    module: c.module,
    rule_id: c.rule.id,
    issue: c.rule.issue,
    suggestion: c.rule.suggestion,
    evidence: c.rule.evidence,
    potential_savings_ms: c.savings,
  }));
}
