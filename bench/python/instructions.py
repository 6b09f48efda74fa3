#!/usr/bin/env python3
"""The Python SDK's overhead in instructions: `python3 bench/python/instructions.py` (valgrind).

The side-by-side timings of run.py move by several per cent with the load of a shared machine;
the number of instructions a process executes does not (callgrind counts them; fixed hash seed,
so two runs of one condition agree within about 0.1 %). It leaves out what instructions do not
show (cache misses, page faults, a machine that makes each clock reading slow), so it is a second
opinion next to run.py's timings, not a replacement. Each condition runs once, two at a time:

1. The cold request, as in run.py: the Lambda runtime emulator (sdk-python/tests/lambda_emulator.py)
   with bench/python/app.py, without the SDK and with it through the handler redirect (logs
   transport), ended right after the first response (EMULATOR_EXIT=after-first-response); the
   runtime's own start-up (EMULATOR_EXIT=before-init) is subtracted from both.
2. The import hooks: `import app` after the runtime's own imports, with the SDK imported first and
   without; the SDK's import alone is subtracted.

Writes the report to stdout and to bench/results/sdk-python-instructions.md.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SDK = os.path.join(REPO, "sdk-python")
EMULATOR = os.path.join(SDK, "tests", "lambda_emulator.py")
PRELOAD = "import json, logging, traceback, warnings, importlib, os, sys, time\n"
CHILD = PRELOAD + """
if os.environ.get("BENCH_SDK") == "1":
    import coldstart_analyzer
if os.environ.get("BENCH_APP") == "1":
    import app
os._exit(0)
"""


def count(argv, env):
    """Instructions executed by the process (callgrind's I refs)."""
    full = dict(
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
        PYTHONHASHSEED="0",
        PYTHONPATH=os.pathsep.join([HERE, SDK]),
        LAMBDA_TASK_ROOT=HERE,
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_EXECUTION_ENV="AWS_Lambda_python%d.%d" % sys.version_info[:2],
        **env,
    )
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv, env=full, cwd=HERE, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if found is None:
        raise SystemExit("valgrind: no count\n" + out.stderr[-2000:])
    return int(found.group(1).replace(",", ""))


def main():
    if shutil.which("valgrind") is None:
        raise SystemExit("instructions.py needs valgrind (apt-get install valgrind)")
    py = sys.executable
    with_sdk = {"_HANDLER": "coldstart_analyzer.handler.handler", "COLDSTART_HANDLER": "app.handler", "COLDSTART_TRANSPORT": "logs"}
    runs = {
        "startup": ([py, EMULATOR], {"_HANDLER": "app.handler", "EMULATOR_EXIT": "before-init"}),
        "cold without": ([py, EMULATOR], {"_HANDLER": "app.handler", "EMULATOR_EXIT": "after-first-response"}),
        "cold with": ([py, EMULATOR], dict(with_sdk, EMULATOR_EXIT="after-first-response")),
        "preload": ([py, "-c", CHILD], {}),
        "sdk": ([py, "-c", CHILD], {"BENCH_SDK": "1", "COLDSTART_TRANSPORT": "logs"}),
        "app": ([py, "-c", CHILD], {"BENCH_APP": "1"}),
        "sdk and app": ([py, "-c", CHILD], {"BENCH_SDK": "1", "BENCH_APP": "1", "COLDSTART_TRANSPORT": "logs"}),
    }
    # the .pyc files first (a compile would be counted)
    subprocess.run([py, "-m", "compileall", "-q", os.path.join(SDK, "coldstart_analyzer"), HERE], check=True)
    started = time.time()
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(runs, pool.map(lambda r: count(*r), runs.values())))
    cold_without = counts["cold without"] - counts["startup"]
    cold_with = counts["cold with"] - counts["startup"]
    load = counts["app"] - counts["preload"]
    hooked = counts["sdk and app"] - counts["sdk"]
    sdk_import = counts["sdk"] - counts["preload"]
    m = 1e6
    lines = [
        "# Python SDK overhead in instructions (`python3 bench/python/instructions.py`)",
        "",
        "Python %s (%s), %s, date %s, %.0f s; callgrind's count of executed instructions, millions." % (
            sys.version.split()[0], py, os.uname().machine, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.time() - started),
        "",
        "| what | without the SDK | with the SDK | difference | goal |",
        "|---|---|---|---|---|",
        "| cold request: init + first response (emulator, its own start-up left out) | %.2f | %.2f | %+.2f (%+.2f %%) | within 3 %% |"
        % (cold_without / m, cold_with / m, (cold_with - cold_without) / m, 100.0 * (cold_with / cold_without - 1)),
        "| import time of the handler (`import app`; with the SDK: after it, its own import left out) | %.2f | %.2f | %+.2f (%+.2f %%) | < 3 %% |"
        % (load / m, hooked / m, (hooked - load) / m, 100.0 * (hooked / load - 1)),
        "| the SDK's own import (after the runtime's own imports) | | %.2f | | |" % (sdk_import / m),
    ]
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    results = os.path.join(REPO, "bench", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "sdk-python-instructions.md"), "w") as f:
        f.write(report)


if __name__ == "__main__":
    main()
