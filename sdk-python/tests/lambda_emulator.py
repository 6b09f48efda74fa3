"""A stand-in for Lambda's Python runtime (AWS's runtime interface client, awslambdaric), run as
`python3 lambda_emulator.py` in a fresh process by the tests.

It does what the runtime's bootstrap does, in the same order (its own imports first): the runtime client module exists
(`awslambdaric.lambda_runtime_client.LambdaRuntimeClient`) before the handler is loaded; the
handler named by _HANDLER is imported with importlib under LAMBDA_TASK_ROOT (on sys.path first);
then, per invocation: wait_next_invocation(), the handler(event, context), post the result. After
the last invocation it calls wait_next_invocation() once more (Lambda would freeze the process
inside that call) and then exits, so the SDK's after-response work runs where it runs in Lambda.

Environment: _HANDLER, LAMBDA_TASK_ROOT, EMULATOR_INVOCATIONS (default 1), EMULATOR_EVENT_SLEEP_MS
(sleep inside wait_next_invocation, simulating the gap between invocations), EMULATOR_OUT (a file
for the results: each invocation's result or error, and the response times). With
AWS_LAMBDA_INITIALIZATION_TYPE=snap-start it runs SnapStart's sequence after init as awslambdaric
does: the snapshot_restore_py hooks (unless EMULATOR_RESTORE_HOOKS=0; EMULATOR_HIDE_CLIENT=1 leaves
awslambdaric's client module out of sys.modules), restore_next() pausing
EMULATOR_SNAPSHOT_PAUSE_MS (the snapshot kept until an environment restores it), the after_restore
hooks. EMULATOR_EXIT (for bench/python/instructions.py) ends the process at once (os._exit) at
`before-init` (the runtime's own start-up only) or `after-first-response`.
"""

import importlib
import os
import sys
import time
import types

# what awslambdaric's bootstrap imports before it loads the handler (so they are not the
# function's or the SDK's cost here either): json, logging (and with it threading, traceback,
# functools, collections), warnings
import json  # noqa: F401,E402
import logging  # noqa: F401,E402
import traceback  # noqa: F401,E402
import warnings  # noqa: F401,E402

STARTED = time.perf_counter()


class Context:
    def __init__(self, n):
        self.aws_request_id = "req-%d-%s" % (n, os.getpid())
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "emulated")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self._deadline = time.monotonic() + float(os.environ.get("EMULATOR_TIMEOUT_S", "30"))

    def get_remaining_time_in_millis(self):
        return int(max(0.0, self._deadline - time.monotonic()) * 1000)


class LambdaRuntimeClient:
    def __init__(self, count, gap_s):
        self.left = count
        self.gap_s = gap_s
        self.n = 0
        self.posted = []

    def wait_next_invocation(self):
        if self.n > 0 and self.gap_s > 0:
            time.sleep(self.gap_s)
        if self.left == 0:
            return None
        self.left -= 1
        self.n += 1
        return {"n": self.n}, Context(self.n)

    def restore_next(self):
        """SnapStart: returns once the snapshot has been restored (here: after a pause)."""
        time.sleep(float(os.environ.get("EMULATOR_SNAPSHOT_PAUSE_MS", "0")) / 1000)

    def post_invocation_result(self, invoke_id, result):
        self.posted.append((invoke_id, result, time.perf_counter()))


def main():
    package = types.ModuleType("awslambdaric")
    package.__path__ = []
    client_module = types.ModuleType("awslambdaric.lambda_runtime_client")
    client_module.LambdaRuntimeClient = LambdaRuntimeClient
    if os.environ.get("EMULATOR_HIDE_CLIENT") != "1":  # 1: a runtime whose client is not awslambdaric's
        sys.modules["awslambdaric"] = package
        sys.modules["awslambdaric.lambda_runtime_client"] = client_module
    client = LambdaRuntimeClient(int(os.environ.get("EMULATOR_INVOCATIONS", "1")), float(os.environ.get("EMULATOR_EVENT_SLEEP_MS", "0")) / 1000)

    snap_start = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"
    before_snapshot, after_restore = [], []
    if snap_start and os.environ.get("EMULATOR_RESTORE_HOOKS", "1") != "0":
        # what Lambda's Python runtimes ship for SnapStart's runtime hooks (snapshot-restore-py)
        hooks = types.ModuleType("snapshot_restore_py")
        hooks.register_before_snapshot = lambda func, *a, **k: before_snapshot.append((func, a, k)) or func
        hooks.register_after_restore = lambda func, *a, **k: after_restore.append((func, a, k)) or func
        hooks.get_before_snapshot = lambda: before_snapshot
        hooks.get_after_restore = lambda: after_restore
        sys.modules["snapshot_restore_py"] = hooks

    exit_at = os.environ.get("EMULATOR_EXIT")
    if exit_at == "before-init":
        os._exit(0)
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    sys.path.insert(0, task_root)
    os.chdir(task_root)
    module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
    init_error = None
    try:
        handler = getattr(importlib.import_module(module_name.replace("/", ".")), function_name)
    except Exception as error:  # the runtime reports an init error
        init_error = "%s: %s" % (type(error).__name__, error)
        handler = None
    init_done = time.perf_counter()
    if snap_start and handler is not None:
        # awslambdaric's on_init_complete: before_snapshot hooks (in reverse order of
        # registration), restore_next (the snapshot is taken and later restored in it), then the
        # after_restore hooks in order; the first event is asked for after that
        while before_snapshot:
            func, a, k = before_snapshot.pop()
            func(*a, **k)
        client.restore_next()
        for func, a, k in after_restore:
            func(*a, **k)
    outcomes = []
    while handler is not None:
        nxt = client.wait_next_invocation()
        if nxt is None:
            break
        event, context = nxt
        started = time.perf_counter()
        try:
            result = handler(event, context)
            error = None
        except Exception as caught:
            result, error = None, "%s: %s" % (type(caught).__name__, caught)
        client.post_invocation_result(context.aws_request_id, result)
        if exit_at == "after-first-response":
            os._exit(0)
        # cpu_ms: the process's CPU time (every thread) from its start to this response, which
        # unlike wall time does not count the time the process waited for a busy machine's CPU
        outcomes.append({"result": result, "error": error, "response_ms": (time.perf_counter() - started) * 1000, "cpu_ms": time.process_time() * 1000})
    out = os.environ.get("EMULATOR_OUT")
    if out:
        import json

        with open(out, "w") as f:
            json.dump({"init_error": init_error, "init_ms": (init_done - STARTED) * 1000, "invocations": outcomes}, f, default=repr)
    if init_error is not None:
        sys.stderr.write("init error: %s\n" % init_error)
        sys.exit(3)


if __name__ == "__main__":
    main()
