"""`python3 -m coldstart_analyzer profile <handler>`: the Node.js SDK's `coldstart profile` for
Python handlers (sdk/src/cli/; docs/sdk-python.md "Profiling before you deploy").

Loads the handler in N fresh interpreters (`--python`, default this one) with the SDK's import
hooks installed first and Lambda's environment simulated, and reports where the module-load time
goes, with the recommendations of the rule table the server applies (Python rules included). The
same report, the same `--json` object (schema "coldstart-profile", version 1; `python_version`
where Node.js has `node_version`), the same `--budget`/`--compare`/`--send` and exit statuses:
0 ok, 1 over budget, 2 usage error, a handler that failed to load, or a refused --send.

Never used inside a function: it runs only as a command.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Dict, List, Optional

from . import _constants as C
from ._rules import OWN_CODE_NAME, RulesError, load_rules, recommend

SCHEMA = "coldstart-profile"
SCHEMA_VERSION = 1
PROFILE_INIT_TYPE = "coldstart-profile"
WIDTH = 80

USAGE = """Usage: python3 -m coldstart_analyzer profile <handler> [options]

Loads the handler in fresh Python processes with the SDK's import hooks and Lambda's
environment simulated, and reports where its module-load time goes. <handler> is a file
(src/app.py: its `handler` function) or a Lambda handler name relative to the task root
(src/app.main, app.handler).

Options:
  --runs N            processes to run (default 10)
  --json              print the profile as JSON (schema "coldstart-profile", version 1)
  --budget MS         exit 1 when the median module-load time exceeds MS
  --compare FILE      compare with an earlier --json output
  --send              post the runs to COLDSTART_ENDPOINT with COLDSTART_API_KEY
                      (init_type "coldstart-profile")
  --memory MB         simulated memory size (default 1024)
  --threshold MS      fold tree entries whose median total is below MS
                      (default: 1 % of the module-load time, at least 0.5 ms)
  --task-root DIR     the function's root (default: the handler's folder, above its packages;
                      the current folder for a handler name)
  --function-name N   name sent with --send (default: AWS_LAMBDA_FUNCTION_NAME or the task root's name)
  --timeout MS        per-run limit (default 60000)
  --rules FILE        rule table (default: the copy shipped with the SDK)
  --python PATH       the interpreter to profile with (default: this one)

Exit status: 0 ok, 1 over budget, 2 usage error, handler failed to load, or --send failed.
"""


class UsageError(Exception):
    pass


def parse_args(argv: List[str]) -> dict:
    o = {
        "handler": "",
        "runs": 10,
        "json": False,
        "budget": None,
        "compare": None,
        "send": False,
        "memory": 1024,
        "threshold": None,
        "task_root": None,
        "function_name": None,
        "timeout": 60000,
        "rules": None,
        "python": None,
    }

    def number(name: str, text: Optional[str], minimum: float, integer: bool = False) -> float:
        try:
            value = float(text) if text is not None and text.strip() != "" else None
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")) or value < minimum or (integer and not value.is_integer()):
            raise UsageError("%s needs a %snumber >= %g, got %s" % (name, "whole " if integer else "", minimum, "nothing" if text is None else json.dumps(text)))
        return int(value) if integer else value

    i = 0
    while i < len(argv):
        arg = argv[i]
        inline = None
        if arg.startswith("--") and "=" in arg:
            arg, inline = arg.split("=", 1)

        def value() -> Optional[str]:
            nonlocal i
            if inline is not None:
                return inline
            i += 1
            return argv[i] if i < len(argv) else None

        if arg == "--runs":
            o["runs"] = number("--runs", value(), 1, True)
        elif arg == "--json":
            o["json"] = True
        elif arg == "--budget":
            o["budget"] = number("--budget", value(), 0)
        elif arg == "--compare":
            o["compare"] = value()
            if not o["compare"]:
                raise UsageError("--compare needs a file")
        elif arg == "--send":
            o["send"] = True
        elif arg == "--memory":
            o["memory"] = number("--memory", value(), 128, True)
        elif arg == "--threshold":
            o["threshold"] = number("--threshold", value(), 0)
        elif arg in ("--task-root", "--function-name", "--rules", "--python"):
            text = value()
            if not text:
                raise UsageError("%s needs a value" % arg)
            o[arg[2:].replace("-", "_")] = text
        elif arg == "--timeout":
            o["timeout"] = number("--timeout", value(), 1, True)
        elif arg.startswith("-"):
            raise UsageError("unknown option %s" % arg)
        elif o["handler"]:
            raise UsageError("one handler only (got %s and %s)" % (o["handler"], arg))
        else:
            o["handler"] = arg
        i += 1
    if not o["handler"]:
        raise UsageError("no handler given")
    return o


# ---- statistics ----------------------------------------------------------------------------


def _round3(x: float) -> float:
    return round(x * 1000) / 1000


def _quantile(values: List[float], q: float) -> float:
    if not values:
        return 0.0
    at = (len(values) - 1) * q
    lo, hi = int(at // 1), int(-(-at // 1))
    return values[lo] + (values[hi] - values[lo]) * (at - lo)


def spread(values: List[float]) -> dict:
    s = sorted(values)
    return {
        "median": _round3(_quantile(s, 0.5)),
        "p25": _round3(_quantile(s, 0.25)),
        "p75": _round3(_quantile(s, 0.75)),
        "min": _round3(s[0] if s else 0),
        "max": _round3(s[-1] if s else 0),
    }


def median(values: List[float]) -> float:
    return spread(values)["median"]


# ---- running the handler -------------------------------------------------------------------

# Runs inside each profiled process: the SDK first (its hooks time everything after it, as the
# handler redirect does), then the handler resolved the way Lambda's runtime resolves it; then the
# SDK's measurements are written out and the process ends, as Lambda freezes it after init. The
# handler is never invoked.
CHILD = "import coldstart_analyzer._profile_child as c; c.main()"


def handler_spec(handler: str, task_root: Optional[str]):
    """(task root, Lambda handler name, file or None) of a file or a handler name."""
    if os.path.isfile(handler) or handler.endswith(".py"):
        path = os.path.abspath(handler)
        if not os.path.isfile(path):
            raise UsageError("%s: no such file" % handler)
        if task_root is None:
            root = os.path.dirname(path)
            while os.path.isfile(os.path.join(root, "__init__.py")) and os.path.dirname(root) != root:
                root = os.path.dirname(root)
        else:
            root = os.path.abspath(task_root)
        rel = os.path.relpath(path, root)
        if rel.startswith(".."):
            raise UsageError("%s is not under the task root %s" % (handler, root))
        module = rel[: -len(".py")] if rel.endswith(".py") else rel
        return root, module.replace(os.sep, "/") + ".handler", path
    if "." not in handler:
        raise UsageError("%s: neither a file nor a handler name (module.function)" % handler)
    return os.path.abspath(task_root or "."), handler, None


def lambda_environment(base: dict, task_root: str, handler: str, memory: int, function_name: str, python: str, version: tuple) -> dict:
    env = {k: v for k, v in base.items() if not k.startswith("COLDSTART_") and k not in ("PYTHONSTARTUP", "PYTHONPROFILEIMPORTTIME")}
    sdk_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + function_name,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python%d.%d" % version[:2],
            "AWS_REGION": base.get("AWS_REGION") or "us-east-1",
            "AWS_DEFAULT_REGION": base.get("AWS_REGION") or base.get("AWS_DEFAULT_REGION") or "us-east-1",
            "LAMBDA_TASK_ROOT": task_root,
            "_HANDLER": handler,
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join([task_root, sdk_parent]),
            "COLDSTART_TRANSPORT": "logs",  # nothing is sent by the profiled process (never invoked)
        }
    )
    env.pop("AWS_LAMBDA_RUNTIME_API", None)
    return env


def interpreter_version(python: str) -> tuple:
    out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise UsageError("--python %s does not run: %s" % (python, out.stderr.strip()[:200]))
    return tuple(int(p) for p in out.stdout.strip().split("."))


def run_once(options: dict, python: str, task_root: str, handler: str, function_name: str, version: tuple):
    folder = tempfile.mkdtemp(prefix="coldstart-profile-")
    out = os.path.join(folder, "run.json")
    env = lambda_environment(dict(os.environ), task_root, handler, options["memory"], function_name, python, version)
    env["COLDSTART_PROFILE_OUT"] = out
    stderr = ""
    killed = False
    try:
        proc = subprocess.run([python, "-c", CHILD], cwd=task_root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=options["timeout"] / 1000.0)
        stderr = proc.stderr.decode("utf-8", "replace")[:8000]
        code = proc.returncode
    except subprocess.TimeoutExpired:
        killed, code = True, None
    snapshot = None
    try:
        with open(out) as f:
            snapshot = json.load(f)
    except (OSError, ValueError):
        snapshot = None
    finally:
        try:
            os.remove(out)
        except OSError:
            pass
        os.rmdir(folder)
    error = None
    if snapshot is None:
        error = "timed out after %d ms" % options["timeout"] if killed else "exited with %s before the end of init" % code
        if stderr.strip():
            error += "\n" + stderr.strip()
    elif isinstance(snapshot.get("error"), str):
        error = snapshot["error"]
    return snapshot, error


# ---- aggregation ---------------------------------------------------------------------------


def merge_trees(trees: List[List[dict]], runs: int) -> List[dict]:
    root: Dict[str, dict] = {}

    def add(into: Dict[str, dict], entries: Optional[List[dict]], run: int) -> None:
        for entry in entries or ():
            node = into.get(entry["name"])
            if node is None:
                node = into[entry["name"]] = {"name": entry["name"], "version": entry.get("version"), "self": [0.0] * runs, "total": [0.0] * runs, "children": {}}
            if node["version"] is None:
                node["version"] = entry.get("version")
            node["self"][run] += entry["self_ms"]
            node["total"][run] += entry["total_ms"]
            add(node["children"], entry.get("children"), run)

    for run, entries in enumerate(trees):
        add(root, entries, run)

    def build(nodes: Dict[str, dict]) -> List[dict]:
        out = []
        for node in nodes.values():
            entry = {"name": node["name"], "self_ms": median(node["self"]), "total_ms": median(node["total"])}
            if node["version"] is not None:
                entry["version"] = node["version"]
            children = build(node["children"])
            if children:
                entry["children"] = children
            out.append(entry)
        out.sort(key=lambda n: (-n["total_ms"], n["name"]))
        return out

    return build(root)


def _versions(tree: List[dict], into: Optional[dict] = None) -> dict:
    into = {} if into is None else into
    for node in tree:
        if "version" in node and node["name"] not in into:
            into[node["name"]] = node["version"]
        if "children" in node:
            _versions(node["children"], into)
    return into


def aggregate(runs: List[dict], meta: dict, rules) -> dict:
    n = len(runs)
    keys = set()
    for run in runs:
        keys.update(run["module_timings"])
    tree = merge_trees([run["module_tree"].get("children", []) for run in runs], n)
    versions = _versions(tree)
    modules = []
    for name in keys:
        values = [run["module_timings"].get(name, 0) for run in runs]
        seen = sum(1 for run in runs if name in run["module_timings"])
        m = {"name": name, "self_ms": median(values), "seen_in": _round3(seen / n)}
        if name in versions:
            m["version"] = versions[name]
        modules.append(m)
    modules.sort(key=lambda m: (-m["self_ms"], m["name"]))
    load = spread([run["load_ms"] for run in runs])
    figures = {m["name"]: {"p50_ms": m["self_ms"], "version": m.get("version"), "seen_in": m["seen_in"]} for m in modules}
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "sdk_version": C.SDK_VERSION,
        "handler": meta["handler"],
        "task_root": meta["task_root"],
        "python_version": meta["python_version"],
        "runtime": meta["runtime"],
        "memory_mb": meta["memory"],
        "runs": n,
        "load_ms": load,
        "init_ms": spread([run["init_ms"] for run in runs]),
        "sdk_overhead_ms": spread([run["sdk_overhead_ms"] for run in runs]),
        "modules": modules,
        "tree": tree,
        "recommendations": recommend(rules, figures, meta["runtime"], load["median"]),
        "runs_detail": runs,
    }


def compare_profiles(previous: dict, current: dict) -> dict:
    before = {m["name"]: m["self_ms"] for m in previous["modules"]}
    after = {m["name"]: m["self_ms"] for m in current["modules"]}
    changes = []
    for name in set(before) | set(after):
        b, a = before.get(name, 0), after.get(name, 0)
        delta = _round3(a - b)
        if delta != 0:
            changes.append({"name": name, "before_ms": b, "after_ms": a, "delta_ms": delta})
    changes.sort(key=lambda m: (-abs(m["delta_ms"]), m["name"]))
    b, a = previous["load_ms"]["median"], current["load_ms"]["median"]
    return {
        "previous_runs": previous["runs"],
        "load_ms": {"before": b, "after": a, "delta": _round3(a - b), "percent": round((a - b) / b * 1000) / 10 if b > 0 else None},
        "modules": changes,
    }


# ---- text output ---------------------------------------------------------------------------


class Paint:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: int, close: int, s: str) -> str:
        return "\x1b[%dm%s\x1b[%dm" % (code, s, close) if self.enabled else s

    def bold(self, s: str) -> str:
        return self._wrap(1, 22, s)

    def dim(self, s: str) -> str:
        return self._wrap(2, 22, s)

    def red(self, s: str) -> str:
        return self._wrap(31, 39, s)

    def yellow(self, s: str) -> str:
        return self._wrap(33, 39, s)

    def green(self, s: str) -> str:
        return self._wrap(32, 39, s)


def fmt(ms: float) -> str:
    return "%.0f" % ms if ms >= 100 else "%.1f" % ms if ms >= 10 else "%.2f" % ms


def fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: max(0, width - 1)] + "\u2026"


def wrap_text(text: str, width: int, indent: str) -> List[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(indent) + len(line) + 1 + len(word) > width:
            lines.append(indent + line)
            line = word
        else:
            line = word if not line else line + " " + word
    if line:
        lines.append(indent + line)
    return lines


def render_tree(tree: List[dict], load_ms: float, threshold: float, paint: Paint) -> List[str]:
    name_width = WIDTH - 20
    lines = [paint.bold("package / file".ljust(name_width) + "self ms".rjust(10) + "total ms".rjust(10))]

    def colour(ms: float, text: str) -> str:
        if load_ms > 0 and ms >= load_ms * 0.2:
            return paint.red(text)
        if load_ms > 0 and ms >= load_ms * 0.05:
            return paint.yellow(text)
        return text

    def visit(nodes: List[dict], prefix: str, top: bool) -> None:
        shown = [n for n in nodes if n["total_ms"] >= threshold]
        hidden = len(nodes) - len(shown)
        for index, node in enumerate(shown):
            last = index == len(shown) - 1 and hidden == 0
            branch = "" if top else ("\u2514\u2500 " if last else "\u251c\u2500 ")
            label = "%s %s" % (node["name"], node["version"]) if "version" in node else node["name"]
            lines.append(fit(prefix + branch + label, name_width) + colour(node["self_ms"], fmt(node["self_ms"]).rjust(10)) + colour(node["total_ms"], fmt(node["total_ms"]).rjust(10)))
            if "children" in node:
                visit(node["children"], prefix + ("" if top else ("   " if last else "\u2502  ")), False)
        if hidden:
            total = sum(n["total_ms"] for n in nodes if n["total_ms"] < threshold)
            branch = "" if top else "\u2514\u2500 "
            label = "(%d more under %s ms)" % (hidden, fmt(threshold))
            lines.append(paint.dim(fit(prefix + branch + label, name_width) + "".rjust(10) + fmt(total).rjust(10)))

    visit(tree, "", True)
    return lines


def _range(s: dict) -> str:
    return "p25-p75 %s-%s, min-max %s-%s" % (fmt(s["p25"]), fmt(s["p75"]), fmt(s["min"]), fmt(s["max"]))


def render_text(profile: dict, threshold: float, paint: Paint) -> str:
    out = [
        paint.bold("coldstart profile: %s" % profile["handler"]),
        "%d run%s, Python %s, %d MB simulated, SDK %s" % (profile["runs"], "" if profile["runs"] == 1 else "s", profile["python_version"], profile["memory_mb"], profile["sdk_version"]),
        "",
        "module load   %8s ms median  (%s)" % (fmt(profile["load_ms"]["median"]), _range(profile["load_ms"])),
        "init          %8s ms median  (%s)" % (fmt(profile["init_ms"]["median"]), _range(profile["init_ms"])),
        "SDK overhead  %8s ms median  (included in init, not in the tree)" % fmt(profile["sdk_overhead_ms"]["median"]),
        "",
    ]
    out.extend(render_tree(profile["tree"], profile["load_ms"]["median"], threshold, paint))
    out.append("")
    recs = profile["recommendations"]
    if not recs:
        out.append("Recommendations: none (no module above the rule table's thresholds).")
    else:
        out.append(paint.bold("Recommendations") + " (estimated savings overlap; do not add them up)")
        for i, rec in enumerate(recs):
            who = "your own code" if rec["module"] == OWN_CODE_NAME else rec["module"]
            out.append(paint.yellow(fit("%d. %s: about %d ms [%s]" % (i + 1, who, rec["potential_savings_ms"], rec["rule_id"]), WIDTH).rstrip()))
            out.extend(wrap_text(rec["issue"], WIDTH, "   "))
            out.extend(wrap_text("Fix: " + rec["suggestion"], WIDTH, "   "))
            out.extend(paint.dim(line) for line in wrap_text("Evidence: " + rec["evidence"], WIDTH, "   "))
    c = profile.get("compare")
    if c is not None:
        out.extend(["", paint.bold("Compared with the previous profile (%d runs)" % c["previous_runs"])])

        def sign(x: float) -> str:
            return "+" + fmt(x) if x > 0 else "-" + fmt(-x) if x < 0 else "0"

        pct = "" if c["load_ms"]["percent"] is None else " (%s%s %%)" % ("+" if c["load_ms"]["percent"] > 0 else "", c["load_ms"]["percent"])
        delta = c["load_ms"]["delta"]
        verdict = paint.red("slower by %s ms%s" % (sign(delta), pct)) if delta > 0 else paint.green("faster by %s ms%s" % (fmt(-delta), pct)) if delta < 0 else "unchanged"
        out.append("module load %s -> %s ms: %s" % (fmt(c["load_ms"]["before"]), fmt(c["load_ms"]["after"]), verdict))
        shown = [m for m in c["modules"] if abs(m["delta_ms"]) >= 0.5][:15]
        for m in shown:
            what = "new" if m["before_ms"] == 0 else "gone" if m["after_ms"] == 0 else "slower" if m["delta_ms"] > 0 else "faster"
            text = "%s %s%s ->%s ms %s" % (fit(m["name"], 40), what.ljust(7), fmt(m["before_ms"]).rjust(9), fmt(m["after_ms"]).rjust(9), sign(m["delta_ms"]).rjust(9))
            out.append(paint.red(text) if m["delta_ms"] > 0 else paint.green(text))
        if not shown:
            out.append("no module changed by 0.5 ms or more")
    b = profile.get("budget")
    if b is not None:
        out.append("")
        if b["exceeded"]:
            out.append(paint.red("Budget exceeded: median module load %s ms > %s ms" % (fmt(b["median_ms"]), fmt(b["limit_ms"]))))
        else:
            out.append(paint.green("Within budget: median module load %s ms <= %s ms" % (fmt(b["median_ms"]), fmt(b["limit_ms"]))))
    return "\n".join(out) + "\n"


# ---- sending -------------------------------------------------------------------------------


def records_for(profile: dict, function_name: str) -> List[dict]:
    from ._records import architecture

    out = []
    for run in profile["runs_detail"]:
        rid = str(uuid.uuid4())
        record = {
            "function_name": function_name[:255],
            "invocation_id": rid,
            "request_id": rid,
            "timestamp": run["started_at"],
            "cold_start": True,
            "init_duration_ms": int(round(run["init_ms"])),
            "execution_duration_ms": 0,
            "memory_allocated_mb": profile["memory_mb"],
            "module_timings": run["module_timings"],
            "runtime_version": profile["runtime"],
            "region": os.environ.get("AWS_REGION") or "us-east-1",
            "init_type": PROFILE_INIT_TYPE,
            "start_kind": "cold",
            "module_tree": run["module_tree"],
            "sdk_version": C.SDK_VERSION,
            "sdk_overhead_ms": run["sdk_overhead_ms"],
            "module_source": "hooks",
            "function_version": "$LATEST",
        }
        if run.get("memory_used_mb") is not None:
            record["memory_used_mb"] = run["memory_used_mb"]
        arch = architecture()
        if arch:
            record["architecture"] = arch
        if run.get("code_id"):
            record["code_id"] = run["code_id"]
        out.append(record)
    return out


def post(endpoint: str, api_key: str, body: bytes):
    import http.client
    import urllib.parse

    url = urllib.parse.urlsplit(endpoint.rstrip("/") + C.BATCH_PATH)
    cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = cls(url.hostname, url.port, timeout=15)
    try:
        conn.request("POST", url.path, body=body, headers={"Content-Type": "application/json", "X-API-Key": api_key, "User-Agent": "coldstart-analyzer-python/" + C.SDK_VERSION})
        response = conn.getresponse()
        return response.status, response.read(2000).decode("utf-8", "replace")
    finally:
        conn.close()


# ---- main ----------------------------------------------------------------------------------


def default_rules_file() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    shipped = os.path.join(here, "recommendations.json")
    if os.path.exists(shipped):
        return shipped
    # running from a clone of the repository (sdk-python/ on PYTHONPATH)
    return os.path.join(os.path.dirname(os.path.dirname(here)), "rules", "recommendations.json")


def profile_command(argv: List[str], write, error) -> int:
    try:
        options = parse_args(argv)
        task_root, handler, _ = handler_spec(options["handler"], options["task_root"])
        if not os.path.isdir(task_root):
            raise UsageError("--task-root %s: no such folder" % task_root)
        python = options["python"] or sys.executable
        version = interpreter_version(python)
    except UsageError as e:
        error("coldstart profile: %s\n\n%s" % (e, USAGE))
        return 2
    except (OSError, subprocess.SubprocessError) as e:
        error("coldstart profile: %s\n" % e)
        return 2
    previous = None
    try:
        rules = load_rules(options["rules"] or default_rules_file())
        if options["compare"] is not None:
            with open(options["compare"]) as f:
                try:
                    previous = json.load(f)
                except ValueError as e:
                    raise ValueError("%s: not JSON (%s)" % (options["compare"], e)) from None
            if not isinstance(previous, dict) or previous.get("schema") != SCHEMA or not isinstance(previous.get("load_ms", {}).get("median"), (int, float)) or not isinstance(previous.get("modules"), list):
                raise ValueError("%s: not a coldstart profile (--json output)" % options["compare"])
            if previous.get("version") != SCHEMA_VERSION:
                raise ValueError("%s: profile schema version %s, expected %d" % (options["compare"], previous.get("version"), SCHEMA_VERSION))
    except (RulesError, OSError, ValueError) as e:
        error("coldstart profile: %s\n" % e)
        return 2
    api_key = os.environ.get(C.ENV_API_KEY)
    endpoint = os.environ.get(C.ENV_ENDPOINT)
    if options["send"] and (not api_key or not endpoint):
        error("coldstart profile: --send needs %s and %s\n" % (C.ENV_ENDPOINT, C.ENV_API_KEY))
        return 2
    function_name = options["function_name"] or os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.path.basename(task_root.rstrip(os.sep)) or "function"
    tty = not options["json"] and sys.stderr.isatty()
    runs = []
    for i in range(options["runs"]):
        if tty:
            sys.stderr.write("\rrun %d/%d" % (i + 1, options["runs"]))
        started_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (int(time.time() * 1000) % 1000)
        snapshot, failure = run_once(options, python, task_root, handler, function_name, version)
        if failure is not None or snapshot is None:
            if tty:
                sys.stderr.write("\n")
            error("coldstart profile: %s failed to load (run %d):\n%s\n" % (options["handler"], i + 1, failure or "no result"))
            return 2
        run = {
            "init_ms": snapshot["init_ms"],
            "load_ms": snapshot["module_tree"]["load_ms"],
            "sdk_overhead_ms": snapshot["sdk_overhead_ms"],
            "modules": snapshot["module_tree"]["modules"],
            "memory_used_mb": snapshot.get("memory_used_mb"),
            "module_timings": snapshot["module_timings"],
            "module_tree": snapshot["module_tree"],
            "started_at": started_at,
        }
        if isinstance(snapshot.get("code_id"), str):
            run["code_id"] = snapshot["code_id"]
        runs.append(run)
    if tty:
        sys.stderr.write("\r\x1b[K")
    runtime = "python%d.%d" % version[:2]
    profile = aggregate(
        runs,
        {"handler": handler, "task_root": task_root, "memory": options["memory"], "python_version": "%d.%d.%d" % version[:3], "runtime": runtime},
        rules,
    )
    if previous is not None:
        profile["compare"] = compare_profiles(previous, profile)
    if options["budget"] is not None:
        profile["budget"] = {"limit_ms": options["budget"], "median_ms": profile["load_ms"]["median"], "exceeded": profile["load_ms"]["median"] > options["budget"]}
    status = 1 if profile.get("budget", {}).get("exceeded") else 0
    if options["send"]:
        try:
            body = json.dumps({"invocations": records_for(profile, function_name)}).encode("utf-8")
            code, text = post(endpoint, api_key, body)
            if not 200 <= code < 300:
                raise RuntimeError("HTTP %d: %s" % (code, text[:500]))
            if not options["json"]:
                error('sent %d records to %s (init_type "%s")\n' % (len(runs), endpoint, PROFILE_INIT_TYPE))
        except Exception as e:
            error("coldstart profile: --send failed: %s\n" % e)
            status = 2
    if options["json"]:
        write(json.dumps(profile, indent=2) + "\n")
    else:
        threshold = options["threshold"] if options["threshold"] is not None else max(0.5, profile["load_ms"]["median"] * 0.01)
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        write(render_text(profile, threshold, Paint(colour)))
    return status


def main(argv: List[str]) -> int:
    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def error(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    command = argv[0] if argv else None
    rest = argv[1:]
    if command == "profile":
        return profile_command(rest, write, error)
    if command in ("--version", "-v"):
        write(C.SDK_VERSION + "\n")
        return 0
    if command in (None, "--help", "-h", "help"):
        write(USAGE)
        return 2 if command is None else 0
    error("coldstart_analyzer: unknown command %s\n\n%s" % (command, USAGE))
    return 2
