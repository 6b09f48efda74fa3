#!/usr/bin/env python3
"""The Python SDK's cost, side by side: `python3 bench/python/run.py [RUNS]` (default 21).

Each run is a fresh python3 process under the Lambda runtime emulator
(sdk-python/tests/lambda_emulator.py) loading bench/python/app.py (about 300 modules), one
invocation, alternately:
  - without the SDK (_HANDLER=app.handler);
  - with it, through the handler redirect (coldstart_analyzer.handler.handler), records written
    by the logs transport to a pipe that is read and thrown away.
Reported, as medians over the runs with the spread: the cold request (process start to the end of
the first response: init + first invocation, what a caller waits for), the handler's loading
alone, and from the SDK's records its own overhead against the module-load time it measured.
Runs at real-time priority when allowed (chrt), as the accuracy test does, so that the two sides
see the same machine.
"""

import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EMULATOR = os.path.join(REPO, "sdk-python", "tests", "lambda_emulator.py")


def once(with_sdk, out):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": HERE,
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python%d.%d" % sys.version_info[:2],
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "EMULATOR_OUT": out,
        "_HANDLER": "app.handler",
    }
    if with_sdk:
        env.update({"PYTHONPATH": os.path.join(REPO, "sdk-python"), "_HANDLER": "coldstart_analyzer.handler.handler", "COLDSTART_HANDLER": "app.handler", "COLDSTART_TRANSPORT": "logs"})
    command = [sys.executable, EMULATOR]
    if subprocess.run(["chrt", "-f", "1", "true"], capture_output=True).returncode == 0:
        command = ["chrt", "-f", "1"] + command
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    total_ms = (time.perf_counter() - started) * 1000
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    with open(out) as f:
        result = json.load(f)
    record = None
    for line in proc.stdout.splitlines():
        if line.startswith('{"coldstart_record"'):
            record = json.loads(line)["coldstart_record"]
    cold_request = result["init_ms"] + result["invocations"][0]["response_ms"]
    return cold_request, result["init_ms"], total_ms, record


def spread(values):
    values = sorted(values)
    q = statistics.quantiles(values, n=4)
    return "%.1f ms median (p25-p75 %.1f-%.1f, min %.1f)" % (statistics.median(values), q[0], q[2], values[0])


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    out = "/tmp/coldstart-bench-python.json"
    rows = {False: [], True: []}
    once(False, out), once(True, out)  # warm the page cache and the .pyc files
    for _ in range(runs):
        for with_sdk in (False, True):
            rows[with_sdk].append(once(with_sdk, out))
    print("python %s, %d runs each, %s, load average %.1f" % (sys.version.split()[0], runs, os.uname().machine, os.getloadavg()[0]))
    for with_sdk in (False, True):
        label = "with the SDK" if with_sdk else "without"
        print("%-14s cold request %s; handler loaded at %s" % (label, spread([r[0] for r in rows[with_sdk]]), spread([r[1] for r in rows[with_sdk]])))
    base = statistics.median(r[0] for r in rows[False])
    sdk = statistics.median(r[0] for r in rows[True])
    print("cold request: %+.1f ms (%+.1f %%) with the SDK" % (sdk - base, 100 * (sdk - base) / base))
    records = [r[3] for r in rows[True]]
    load = statistics.median(r["module_tree"]["load_ms"] for r in records)
    overhead = statistics.median(r["sdk_overhead_ms"] for r in records)
    modules = statistics.median(r["module_tree"]["modules"] for r in records)
    split(runs)
    print("module load %.1f ms (%d modules), SDK overhead %.2f ms = %.1f %% of it (hooks and the SDK's own import)" % (load, modules, overhead, 100 * overhead / load))


SPLIT = """
import time
t = time.perf_counter_ns()
import coldstart_analyzer as c
import app
s = c._state
print(s.setup_ns, s.recorder.overhead_ns, s.recorder.load_ns, s.recorder.modules)
"""


def split(runs):
    """In-process: the SDK's own import and the hooks' bookkeeping, apart."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.path.join(REPO, "sdk-python"), "LAMBDA_TASK_ROOT": HERE}
    rows = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", SPLIT], env=env, cwd=HERE, capture_output=True, text=True, check=True).stdout.split()
        rows.append([int(x) for x in out])
    setup = statistics.median(r[0] for r in rows) / 1e6
    hooks = statistics.median(r[1] for r in rows) / 1e6
    load = statistics.median(r[2] for r in rows) / 1e6
    per_module = statistics.median(r[1] / r[3] for r in rows) / 1e3
    print("in-process: importing the SDK %.2f ms; hooks %.2f ms = %.2f %% of the %.1f ms module load (%.1f us per module)" % (setup, hooks, 100 * hooks / load, load, per_module))


if __name__ == "__main__":
    main()
