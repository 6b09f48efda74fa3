/*
 * report.h: `coldstartd report`, the analysis for people without Grafana. Uses the same queries
 * as the HTTP API (queries.h) and prints them for an 80-column terminal, or as JSON.
 */
#ifndef CSA_REPORT_H
#define CSA_REPORT_H

#include "config.h"

/* Runs the report. project_slug and function_name may be NULL (then: the only project; the
 * function with the slowest average init). Returns the process exit code. */
int csa_report(const csa_config *cfg, const char *project_slug, const char *function_name, int as_json);

#endif
