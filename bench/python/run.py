#!/usr/bin/env python3
"""The Python SDK's overhead, side by side: `python3 bench/python/run.py [PAIRS]` (default 25).

Every sample is a fresh python3 process; the conditions are interleaved in one run (the order
alternates from one round to the next), so that a machine loaded by other work loads both sides
alike; figures are medians, and the comparisons are medians of the per-round ratios.

1. Import hooks: a process that has imported what AWS's runtime bootstrap imports before the handler
   (json, logging, traceback, warnings, importlib) times `import app` (bench/python/app.py, about 200
   modules), without the SDK and with it imported first (hooks installed). The SDK's own import is
   timed apart.
2. The cold request: the Lambda runtime emulator (sdk-python/tests/lambda_emulator.py) loads the
   handler and serves one invocation, without the SDK (_HANDLER=app.handler) and with it through the
   handler redirect (logs transport, records read from a pipe): init + first response, what the
   caller of a cold start waits for beyond the platform's own work. Both have the SDK's folder on
   sys.path, as a Lambda function has /opt/python (a layer) or its task root (a wheel installed in
   the package) whether the SDK is used or not.
3. Where the SDK's time goes (in-process, with the SDK): its import, the hooks per module, the first
   invocation's start (on the response's path), and after the response the record's pieces
   (attribution through importlib.metadata, the code_id, JSON).

Runs at real-time priority when allowed (chrt), as the accuracy test does. Writes the report to
stdout and to bench/results/sdk-python-latest.md.
"""

import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SDK = os.path.join(REPO, "sdk-python")
EMULATOR = os.path.join(SDK, "tests", "lambda_emulator.py")
PRELOAD = "import json, logging, traceback, warnings, importlib, os, sys, time\n"

HOOKS_CHILD = PRELOAD + """
t0 = time.perf_counter_ns()
if os.environ.get("BENCH_SDK") == "1":
    import coldstart_analyzer
t1 = time.perf_counter_ns()
c1 = time.thread_time_ns()
import app
c2 = time.thread_time_ns()
t2 = time.perf_counter_ns()
print("BENCH " + json.dumps({"sdk_import_ms": (t1 - t0) / 1e6, "load_ms": (t2 - t1) / 1e6, "load_cpu_ms": (c2 - c1) / 1e6}))
"""

BREAKDOWN_CHILD = PRELOAD + """
import types
# the runtime client, as in Lambda (and the emulator): the record's work waits for its next-event
# call instead of running on a thread while the pieces below are timed
client = types.ModuleType("awslambdaric.lambda_runtime_client")
client.LambdaRuntimeClient = type("LambdaRuntimeClient", (), {"wait_next_invocation": lambda self: None})
sys.modules["awslambdaric.lambda_runtime_client"] = client
t0 = time.perf_counter_ns()
import coldstart_analyzer as c
t1 = time.perf_counter_ns()
import app
t2 = time.perf_counter_ns()
s = c._state
class Ctx:
    aws_request_id = "r1"
    function_name = "bench"
    function_version = "$LATEST"
    def get_remaining_time_in_millis(self):
        return 30000
config = c.resolve_config({"transport": "logs"})
from coldstart_analyzer import _runtime as R, _records as RR, _fingerprint as F, _delivery as D
t3 = time.perf_counter_ns()
inv = R.begin(s, config, Ctx())
t4 = time.perf_counter_ns()
R.finish(s, inv)
t5 = time.perf_counter_ns()
s.package_tree()
t6 = time.perf_counter_ns()
F.code_id(s)
t7 = time.perf_counter_ns()
record = RR.build_record(s, inv)
t8 = time.perf_counter_ns()
D.dumps(record)
t9 = time.perf_counter_ns()
print("BENCH " + json.dumps({
    "sdk_import_ms": (t1 - t0) / 1e6, "load_ms": (t2 - t1) / 1e6, "modules": s.recorder.modules,
    "hooks_ms": s.recorder.overhead_ns / 1e6, "begin_ms": (t4 - t3) / 1e6, "finish_ms": (t5 - t4) / 1e6,
    "attribution_ms": (t6 - t5) / 1e6, "code_id_ms": (t7 - t6) / 1e6, "record_ms": (t8 - t7) / 1e6, "json_ms": (t9 - t8) / 1e6,
}))
"""


def _prefix():
    try:
        if subprocess.run(["chrt", "-f", "1", "true"], capture_output=True).returncode == 0:
            return ["chrt", "-f", "1"]
    except OSError:
        pass
    return []


PREFIX = _prefix()


def base_env():
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": HERE,
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python%d.%d" % sys.version_info[:2],
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "PYTHONPATH": os.pathsep.join([HERE, SDK]),
    }


def child(script, sdk):
    env = dict(base_env(), BENCH_SDK="1" if sdk else "0", COLDSTART_TRANSPORT="logs")
    if not sdk:
        env["COLDSTART_ENABLED"] = "false"
    out = subprocess.run(PREFIX + [sys.executable, "-c", script], env=env, cwd=HERE, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(next(line[6:] for line in out.stdout.splitlines() if line.startswith("BENCH ")))


def cold(sdk, out):
    env = dict(base_env(), EMULATOR_OUT=out, _HANDLER="app.handler")
    if sdk:
        env.update({"_HANDLER": "coldstart_analyzer.handler.handler", "COLDSTART_HANDLER": "app.handler", "COLDSTART_TRANSPORT": "logs"})
    proc = subprocess.run(PREFIX + [sys.executable, EMULATOR], env=env, cwd=HERE, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    with open(out) as f:
        result = json.load(f)
    if sdk and '{"coldstart_record"' not in proc.stdout:
        raise SystemExit("no record from the SDK: %s" % proc.stderr)
    first = result["invocations"][0]["response_ms"]
    return {"init_ms": result["init_ms"], "response_ms": first, "cold_ms": result["init_ms"] + first, "cold_cpu_ms": result["invocations"][0]["cpu_ms"]}


def med(values):
    return statistics.median(values)


def q(values):
    s = sorted(values)
    if len(s) < 4:
        return "%.1f-%.1f" % (s[0], s[-1])
    qs = statistics.quantiles(s, n=4)
    return "%.1f-%.1f" % (qs[0], qs[2])


def main():
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    out = "/tmp/coldstart-bench-python-%d.json" % os.getpid()
    load_start = os.getloadavg()
    # warm the page cache and the .pyc files
    child(HOOKS_CHILD, False), child(HOOKS_CHILD, True), cold(False, out), cold(True, out)
    hooks = {False: [], True: []}
    colds = {False: [], True: []}
    breakdown = []
    started = time.time()
    for round_ in range(pairs):
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for sdk in order:
            hooks[sdk].append(child(HOOKS_CHILD, sdk))
        for sdk in order:
            colds[sdk].append(cold(sdk, out))
        breakdown.append(child(BREAKDOWN_CHILD, True))
    elapsed = time.time() - started
    os.remove(out)

    def ratio(pairs_, key):
        return 100 * med(w[key] / b[key] - 1 for b, w in zip(pairs_[False], pairs_[True]))

    def row(label, pairs_, key, goal):
        b = [x[key] for x in pairs_[False]]
        w = [x[key] for x in pairs_[True]]
        return "| %s | %.1f ms (p25-p75 %s, min %.1f) | %.1f ms (p25-p75 %s, min %.1f) | %+.2f %% | %+.2f %% | %+.2f %% | %s |" % (
            label, med(b), q(b), min(b), med(w), q(w), min(w), 100 * (med(w) / med(b) - 1), ratio(pairs_, key), 100 * (min(w) / min(b) - 1), goal)

    lines = [
        "# Python SDK overhead (`python3 bench/python/run.py %d`)" % pairs,
        "",
        "Machine: %d CPUs, %s, Linux %s; Python %s (%s); date %s; load average %.2f at the start, %.2f at the end; %d rounds in %.0f s%s."
        % (
            os.cpu_count() or 0,
            os.uname().machine,
            os.uname().release,
            sys.version.split()[0],
            sys.executable,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            load_start[0],
            os.getloadavg()[0],
            pairs,
            elapsed,
            ", real-time priority (chrt)" if PREFIX else "",
        ),
        "",
        "Wall time counts the time a process waited for the CPU of a busy machine; CPU time (the process's, every thread) does not. The fastest run of each side is the one least disturbed by other work.",
        "",
        "| what | without the SDK | with the SDK | difference of the medians | median of the per-round differences | difference of the fastest runs | goal |",
        "|---|---|---|---|---|---|---|",
        row("import time of the handler (`import app`, %d modules), wall" % med(b["modules"] for b in breakdown), hooks, "load_ms", "< 3 %"),
        row("the same, CPU time", hooks, "load_cpu_ms", "< 3 %"),
        row("cold request: init + first response (emulator), wall", colds, "cold_ms", "within 3 %"),
        row("the same, CPU time from the process's start", colds, "cold_cpu_ms", "within 3 %"),
        "| of which the first response, wall | %.2f ms | %.2f ms | | | | |" % (med(c["response_ms"] for c in colds[False]), med(c["response_ms"] for c in colds[True])),
        "",
        "Where the SDK's time goes (in-process, medians; the import and the hooks are init, the first invocation's start is on the response's path, the rest runs after the response):",
        "",
        "| piece | ms |",
        "|---|---|",
        "| importing the SDK (after the runtime's own imports) | %.2f |" % med(b["sdk_import_ms"] for b in breakdown),
        "| hooks, all modules (%.1f us per module, `sdk_overhead_ms` minus the import) | %.2f |" % (med(1000 * b["hooks_ms"] / max(1, b["modules"]) for b in breakdown), med(b["hooks_ms"] for b in breakdown)),
        "| first invocation's start (close init, hook the runtime client, start the watcher thread) | %.2f |" % med(b["begin_ms"] for b in breakdown),
        "| its end (queue the record's work) | %.3f |" % med(b["finish_ms"] for b in breakdown),
        "| after the response: attribution (importlib.metadata, the package tree) | %.2f |" % med(b["attribution_ms"] for b in breakdown),
        "| after the response: code_id (hashing own files, versions) | %.2f |" % med(b["code_id_ms"] for b in breakdown),
        "| after the response: the record (timings, tree) | %.2f |" % med(b["record_ms"] for b in breakdown),
        "| after the response: JSON | %.2f |" % med(b["json_ms"] for b in breakdown),
    ]
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    results = os.path.join(REPO, "bench", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "sdk-python-latest.md"), "w") as f:
        f.write(report)


if __name__ == "__main__":
    main()
