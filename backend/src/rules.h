/*
 * rules.h: the recommendation rule table (rules/recommendations.json) and the engine that applies
 * it to a function's measured module breakdown. The table is data, loaded and validated once at
 * start-up; a bad file stops start-up with a message naming the rule and field.
 */
#ifndef CSA_RULES_H
#define CSA_RULES_H

#include <jansson.h>
#include <stddef.h>

typedef struct csa_rules csa_rules;

/* Loads and validates the rule file. Returns NULL with a one-line reason in err
 * (e.g. "rules/recommendations.json: rule 3 (\"moment\"): savings_share must be in (0, 1]"). */
csa_rules *csa_rules_load(const char *path, char *err, size_t err_size);
void csa_rules_free(csa_rules *rules);
size_t csa_rules_count(const csa_rules *rules);

/*
 * Applies the rules to one function's breakdown.
 *   modules: object, module name -> {"avg_load_time_ms", "p50_ms", "p95_ms", "p99_ms" (numbers),
 *            "seen_in" (fraction 0..1 of the window's cold starts that loaded it, optional),
 *            "version" (string or null, from the SDK's module tree)}; borrowed
 *   context: object {"init_p50_ms": number or null, "module_load_p50_ms": number (sum of the
 *            modules' p50s), "cold_starts": integer, "runtime": the function's runtime
 *            ("python3.12", "nodejs20.x") or null}; borrowed. A rule with a "runtime" (a prefix:
 *            "python", "nodejs") applies only when the context's runtime starts with it.
 * Returns a new array of recommendations, ranked by potential_savings_ms (descending), each
 *   {"module", "rule_id", "issue", "suggestion", "evidence", "potential_savings_ms"}
 * where potential_savings_ms = round(module p50 x the rule's savings_share). Modules whose p50 is
 * under the table's min_module_ms get none.
 */
json_t *csa_rules_recommend(const csa_rules *rules, json_t *modules, json_t *context);

/*
 * Whether `version` (numeric major[.minor[.patch]], optional leading "v", pre-release and build
 * tags ignored) lies inside `range` (space-separated comparators ">=", ">", "<", "<=", "=", all of
 * which must hold, e.g. ">=3.0.0 <3.499.0"). Returns 1 inside, 0 outside, -1 if either does not
 * parse. Used by the engine for a rule's "versions"; exposed for tests and tools.
 */
int csa_rules_version_in_range(const char *version, const char *range);

#endif
