"""Runs inside each process `python -m coldstart_analyzer profile` starts (see _cli.py): the SDK
is already imported (its hooks are in), the handler is loaded the way Lambda's runtime loads it,
then the SDK's measurements are written to COLDSTART_PROFILE_OUT and the process ends, as Lambda
freezes it after init. Nothing else is imported before the handler (json comes after), so the
handler's imports are all its own."""

import os
import sys
from time import perf_counter_ns

_loaded_at = perf_counter_ns()


def main() -> None:
    out = os.environ.get("COLDSTART_PROFILE_OUT")
    package = sys.modules["coldstart_analyzer"]
    state = package._state
    result = {}
    try:
        if state is None:
            raise RuntimeError("the SDK is disabled (COLDSTART_ENABLED) or failed to start")
        state.coverage = "redirect"
        state.setup_ns += perf_counter_ns() - _loaded_at  # this module is the SDK's, not the handler's
        task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
        if task_root not in sys.path:
            sys.path.insert(0, task_root)
        from ._redirect import resolve

        name = os.environ.get("_HANDLER", "")
        function = resolve(name)
        state.handler_module = getattr(function, "__module__", None)
        module_name = name.rsplit(".", 1)[0].replace("/", ".")
        if not hasattr(sys.modules.get(module_name), name.rsplit(".", 1)[-1]):
            raise LookupError("Runtime.HandlerNotFound: Handler '%s' missing on module '%s'" % (name.rsplit(".", 1)[-1], module_name))
    except BaseException as error:  # the handler's init failed: reported, as Lambda would
        import traceback

        result["error"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))[-4000:]
    if state is not None:
        cold = state.close_init()
        if "error" not in result:
            from . import _fingerprint
            from ._report import module_timings, module_tree, self_by_key
            from ._records import memory_used_mb

            tree = state.package_tree()
            result.update(
                {
                    "init_ms": round(cold.init_ms or 0.0, 3),
                    "module_timings": module_timings(self_by_key(tree)),
                    "module_tree": module_tree(state.recorder, tree, state.coverage),
                    "sdk_overhead_ms": round((state.setup_ns + state.recorder.overhead_ns) / 1e3) / 1e3,
                    "memory_used_mb": memory_used_mb(True),
                    "code_id": _fingerprint.code_id(state),
                }
            )
    import json

    try:
        with open(out, "w") as f:
            json.dump(result, f)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
