"""The recommendation rule table (rules/recommendations.json) for `python -m coldstart_analyzer
profile`: loaded, validated and applied with the semantics of the backend's engine
(backend/src/rules.c) and of the Node.js SDK's port (sdk/src/cli/rules.ts): the same thresholds, the
same matching (exact name, glob where '*' matches any run of characters, generic rules), version
ranges, runtime filter, choice of the best rule per module, rounding (half away from zero) and
ranking (savings descending, then module name, then rule id, compared as UTF-8 bytes).

Never imported by a function at run time: only the command line uses it.
"""

import json
import math
import re
from typing import Any, Dict, List, Optional

MAX_RULES = 1000
MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 214
MAX_TEXT_LENGTH = 2000
MAX_COMPARATORS = 4
MAX_VERSION_PART = 999999999
MAX_MODULE_MS = 1e9
OWN_CODE_PREFIX = "./"
OWN_CODE_NAME = "(own code)"
OWN_CODE_DOMINANT_SHARE = 0.5

_SEMVER = re.compile(r"^[vV]?(\d{1,9})(?:\.(\d{1,9})(?:\.(\d{1,9}))?)?(?:[-+].*)?$", re.S)
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=)(.*)$", re.S)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")

TOP_FIELDS = (("version", "integer", True), ("min_module_ms", "number", True), ("rules", "array", True))
RULE_FIELDS = (
    ("id", "string", True),
    ("match", "object", True),
    ("versions", "string", False),
    ("issue", "string", True),
    ("suggestion", "string", True),
    ("evidence", "string", True),
    ("savings_share", "number", True),
    ("min_ms", "number", False),
    ("seen_in_below", "number", False),
    ("runtime", "string", False),
)
TYPE_NAMES = {"string": "a string", "number": "a number", "integer": "an integer", "object": "an object", "array": "an array"}


class RulesError(Exception):
    pass


def parse_semver(text: str):
    m = _SEMVER.match(text)
    if m is None:
        return None
    parts = (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))
    return parts if all(p <= MAX_VERSION_PART for p in parts) else None


def parse_range(text: str):
    out = []
    for word in text.split(" "):
        if word == "":
            continue
        if len(out) == MAX_COMPARATORS:
            return None
        m = _COMPARATOR.match(word)
        if m is None or m.group(2) == "":
            return None
        version = parse_semver(m.group(2))
        if version is None:
            return None
        out.append((m.group(1), version))
    return out or None


def satisfies(v, comparators) -> bool:
    for op, version in comparators:
        cmp = (v > version) - (v < version)
        ok = {"=": cmp == 0, "<": cmp < 0, "<=": cmp <= 0, ">": cmp > 0, ">=": cmp >= 0}[op]
        if not ok:
            return False
    return True


def glob_match(pattern: str, name: str) -> bool:
    p = n = 0
    star = -1
    resume = 0
    while n < len(name):
        if p < len(pattern) and pattern[p] == "*":
            star = p
            p += 1
            resume = n
        elif p < len(pattern) and pattern[p] == name[n]:
            p += 1
            n += 1
        elif star >= 0:
            p = star + 1
            resume += 1
            n = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
    if kind == "object":
        return isinstance(value, dict)
    return isinstance(value, list)


def _check_fields(obj: dict, fields) -> Optional[str]:
    names = [f[0] for f in fields]
    for key in obj:
        if key not in names:
            return 'unknown key "%s"' % key[:64]
    for name, kind, required in fields:
        if name not in obj:
            if required:
                return "%s is required" % name
            continue
        value = obj[name]
        if not _has_type(value, kind):
            return "%s must be %s" % (name, TYPE_NAMES[kind])
        if kind == "string" and value == "":
            return "%s must not be empty" % name
        if kind == "number" and not math.isfinite(value):
            return "%s must be a finite number" % name
    return None


class Rule:
    __slots__ = ("id", "kind", "match", "comparators", "issue", "suggestion", "evidence", "share", "min_ms", "seen_in_below", "runtime")


class RuleTable:
    def __init__(self, min_module_ms: float, rules: List[Rule]) -> None:
        self.min_module_ms = min_module_ms
        self.rules = rules


def parse_rules(document: Any, path: str = "recommendations.json") -> RuleTable:
    def fail(message: str):
        raise RulesError("%s: %s" % (path, message))

    if not isinstance(document, dict):
        fail("the top level must be an object")
    bad = _check_fields(document, TOP_FIELDS)
    if bad:
        fail(bad)
    if document["version"] != 1:
        fail("version must be 1")
    min_module_ms = document["min_module_ms"]
    if min_module_ms < 0 or min_module_ms > MAX_MODULE_MS:
        fail("min_module_ms must be between 0 and %g" % MAX_MODULE_MS)
    items = document["rules"]
    if not items or len(items) > MAX_RULES:
        fail("rules must hold between 1 and %d rules" % MAX_RULES)
    rules: List[Rule] = []
    for index, item in enumerate(items):
        rid = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) and item.get("id") else None

        def rule_fail(message: str):
            fail('rule %d ("%s"): %s' % (index, rid, message) if rid is not None else "rule %d: %s" % (index, message))

        if not isinstance(item, dict):
            rule_fail("must be an object")
        if rid is not None and ("\0" in rid or len(rid) > MAX_ID_LENGTH or not _ID.match(rid)):
            rid = None
            rule_fail("id must be a slug of at most %d characters ([a-z0-9-])" % MAX_ID_LENGTH)
        bad = _check_fields(item, RULE_FIELDS)
        if bad:
            rule_fail(bad)
        for at, previous in enumerate(rules):
            if previous.id == rid:
                rule_fail('id "%s" duplicates rule %d' % (rid, at))
        match = item["match"]
        if len(match) != 1:
            rule_fail('match must have exactly one of "module", "pattern", "generic"')
        key = next(iter(match))
        if key not in ("module", "pattern", "generic"):
            rule_fail('match: unknown key "%s" (expected module, pattern or generic)' % key[:64])
        text = match[key]
        if not isinstance(text, str) or text == "":
            rule_fail("match.%s must be a non-empty string" % key)
        r = Rule()
        r.id = rid
        if key == "generic":
            if text not in ("large_module", "own_code_dominates"):
                rule_fail('match.generic: unknown generic rule "%s" (expected large_module or own_code_dominates)' % text[:64])
            r.kind, r.match = text, None
        else:
            if len(text.encode("utf-8")) > MAX_NAME_LENGTH or "\0" in text:
                rule_fail("match.%s is too long or contains a NUL" % key)
            if key == "pattern" and "*" not in text:
                rule_fail("match.pattern must contain '*' (use match.module for an exact name)")
            r.kind, r.match = key, text
        for field in ("issue", "suggestion", "evidence"):
            if len(item[field].encode("utf-8")) > MAX_TEXT_LENGTH:
                rule_fail("%s is longer than %d characters" % (field, MAX_TEXT_LENGTH))
        r.issue, r.suggestion, r.evidence = item["issue"], item["suggestion"], item["evidence"]
        r.share = item["savings_share"]
        if not (0 < r.share <= 1):
            rule_fail("savings_share must be in (0, 1]")
        r.comparators = []
        if "versions" in item:
            if r.kind in ("large_module", "own_code_dominates"):
                rule_fail("versions is only allowed with match.module or match.pattern")
            parsed = parse_range(item["versions"])
            if parsed is None:
                rule_fail('versions: cannot parse "%s"' % item["versions"][:64])
            r.comparators = parsed
        r.min_ms = min_module_ms
        if "min_ms" in item:
            r.min_ms = item["min_ms"]
            if r.min_ms < min_module_ms or r.min_ms > MAX_MODULE_MS:
                rule_fail("min_ms must be between min_module_ms (%g) and %g" % (min_module_ms, MAX_MODULE_MS))
        r.seen_in_below = 0
        if "seen_in_below" in item:
            if r.kind == "own_code_dominates":
                rule_fail("seen_in_below does not apply to own_code_dominates")
            r.seen_in_below = item["seen_in_below"]
            if not (0 < r.seen_in_below <= 1):
                rule_fail("seen_in_below must be in (0, 1]")
        r.runtime = item.get("runtime")
        if r.runtime is not None and len(r.runtime) > 50:
            rule_fail('runtime must be 1 to 50 characters (e.g. "python")')
        rules.append(r)
    return RuleTable(min_module_ms, rules)


def load_rules(path: str) -> RuleTable:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise RulesError("%s: %s" % (path, error.strerror or error)) from None

    def no_duplicates(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise RulesError('%s: duplicate key "%s"' % (path, key[:64]))
            out[key] = value
        return out

    try:
        document = json.loads(text, object_pairs_hook=no_duplicates)
    except ValueError as error:
        raise RulesError("%s: %s" % (path, error)) from None
    return parse_rules(document, path)


def _llround(x: float) -> int:
    return -int(math.floor(-x + 0.5)) if x < 0 else int(math.floor(x + 0.5))


def _runtime_applies(r: Rule, runtime: Optional[str]) -> bool:
    return r.runtime is None or (runtime is not None and runtime.startswith(r.runtime))


def _seen_in_holds(r: Rule, entry: dict) -> bool:
    if r.seen_in_below <= 0:
        return True
    seen = entry.get("seen_in")
    return isinstance(seen, (int, float)) and not isinstance(seen, bool) and seen < r.seen_in_below


def _offer(r: Rule, ms: float, best: list) -> None:
    if ms < r.min_ms:
        return
    savings = _llround(ms * r.share)
    if best[0] is None or savings > best[1]:
        best[0], best[1] = r, savings


def recommend(table: RuleTable, modules: Dict[str, dict], runtime: Optional[str], module_load_p50_ms: Optional[float]) -> List[dict]:
    candidates = []
    own_ms = 0.0
    all_ms = 0.0
    for name, entry in modules.items():
        p50 = entry.get("p50_ms")
        if not isinstance(p50, (int, float)) or isinstance(p50, bool) or not (0 <= p50 <= MAX_MODULE_MS):
            continue
        all_ms += p50
        if name.startswith(OWN_CODE_PREFIX):
            own_ms += p50
        if p50 < table.min_module_ms:
            continue
        version = entry.get("version") if isinstance(entry.get("version"), str) else None
        best = [None, 0]
        specific = False
        for r in table.rules:
            if r.kind not in ("module", "pattern") or not _runtime_applies(r, runtime) or not _seen_in_holds(r, entry):
                continue
            if not (r.match == name if r.kind == "module" else glob_match(r.match, name)):
                continue
            if r.comparators:
                v = parse_semver(version) if version is not None else None
                if v is None or not satisfies(v, r.comparators):
                    continue
            specific = True
            _offer(r, p50, best)
        if not specific:
            for r in table.rules:
                if r.kind == "large_module" and _runtime_applies(r, runtime) and _seen_in_holds(r, entry):
                    _offer(r, p50, best)
        if best[0] is not None:
            candidates.append((name, best[0], best[1]))
    load = module_load_p50_ms if isinstance(module_load_p50_ms, (int, float)) and module_load_p50_ms > 0 else all_ms
    if own_ms > 0 and own_ms >= table.min_module_ms and own_ms > OWN_CODE_DOMINANT_SHARE * load:
        best = [None, 0]
        for r in table.rules:
            if r.kind == "own_code_dominates" and _runtime_applies(r, runtime):
                _offer(r, own_ms, best)
        if best[0] is not None:
            candidates.append((OWN_CODE_NAME, best[0], best[1]))
    candidates.sort(key=lambda c: (-c[2], c[0].encode("utf-8"), c[1].id.encode("utf-8")))
    return [
        {"module": m, "rule_id": r.id, "issue": r.issue, "suggestion": r.suggestion, "evidence": r.evidence, "potential_savings_ms": s}
        for m, r, s in candidates
    ]
