"""The records, built and handed to their transport after the response (see _runtime.py).

Nothing of this module is loaded during init or on the first response's path: it is imported by
the after-response work (in the runtime client's next-event call, or on a background thread), by
the early copy of a long first invocation, and by SnapStart's preparation. Nothing here raises
into the function.
"""

import atexit
import os
import sys
import time
from time import perf_counter_ns

from . import _constants as C


def runtime_version(execution_env: "Optional[str]", version_info: "Any" = None) -> str:
    """`AWS_Lambda_python3.12` -> `python3.12`; outside Lambda `python` + the interpreter's version."""
    if execution_env and execution_env.startswith("AWS_Lambda_") and len(execution_env) > len("AWS_Lambda_"):
        return execution_env[len("AWS_Lambda_") :][:50]
    v = version_info or sys.version_info
    return "python%d.%d.%d" % (v[0], v[1], v[2])


def architecture(machine: "Optional[str]" = None) -> "Optional[str]":
    if machine is None:
        machine = os.uname().machine
    machine = machine.lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "arm64"
    return None


def clip(text: str, limit: int = 255) -> str:
    return text if len(text) <= limit else text[:limit]


def positive_int(text: "Optional[str]") -> "Optional[int]":
    if text is None or not text.strip().isdigit():
        return None
    value = int(text)
    return value if value > 0 else None


def new_id() -> str:
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def iso_utc(epoch: float) -> str:
    seconds = int(epoch)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % int((epoch - seconds) * 1000)


_rss = (0, -1e9)


def memory_used_mb(fresh: bool) -> "Optional[int]":
    """The process RSS in MB; warm records reuse a reading up to 1 s old."""
    global _rss
    now = time.monotonic()
    if fresh or now - _rss[1] > 1.0:
        try:
            with open("/proc/self/statm", "rb") as f:
                pages = int(f.read().split()[1])
            _rss = (round(pages * os.sysconf("SC_PAGE_SIZE") / 1048576), now)
        except Exception:
            try:
                import resource

                _rss = (round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), now)
            except Exception:
                return None
    return _rss[0]


# -- the transports ---------------------------------------------------------------------------------
def uses_stream(config: "Config") -> bool:
    """The extension's stream: transport auto, the extension's file present, not switched off,
    no endpoint given in code."""
    return config.transport == "auto" and config.extension and not config.endpoint_from_option and os.path.exists(config.extension_path)


def sink(runtime: "Runtime", config: "Config"):
    key = (config.transport, config.endpoint, config.api_key, config.extension, config.endpoint_from_option)
    found = runtime._sinks.get(key)
    if found is None:
        with runtime._sink_lock:
            found = runtime._sinks.get(key)
            if found is None:
                from . import _delivery as D

                if config.transport == "logs":
                    found = D.LogsSink()
                else:
                    direct = D.DirectSender(config, runtime.worker)
                    found = D.StreamSink(config, runtime.worker, direct) if uses_stream(config) else direct
                runtime._sinks[key] = found
    return found


def at_exit(runtime: "Runtime") -> None:
    """At interpreter exit (outside Lambda, or a runtime that exits): the after-response work not
    yet run runs now, the background thread's work finishes, what is still undelivered gets one
    last try; at most 1 s each. No background thread is left writing to stdout while the
    interpreter finalises (which aborts it)."""
    try:
        runtime.run_pending(1.0)
        runtime.hand_over(1.0)
        if runtime._worker is not None:
            runtime._worker.drain(1.0)
        deadline = time.monotonic() + 1.0
        for each in list(runtime._sinks.values()):
            if each.pending() and time.monotonic() < deadline:
                each.flush_now(deadline)
    except Exception:
        pass


def register_exit(runtime: "Runtime") -> None:
    atexit.register(at_exit, runtime)


# -- SnapStart --------------------------------------------------------------------------------------
def prepare_snap_start(runtime: "Runtime") -> None:
    """With SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start) init runs once, when the version
    is published, and ends in a snapshot; each environment then starts by restoring it, and that
    restore is what delays the first request. The SDK registers the runtime hooks of Lambda's
    Python runtimes (snapshot_restore_py: before_snapshot, after_restore; its before_snapshot runs
    after the function's own, its after_restore before them, since hooks run in reverse order of
    registration before the snapshot and in order after the restore), and wraps the runtime
    client's restore_next (the call that returns once the snapshot has been restored) where that
    client is loaded: whichever sees the restore first dates it. Called before the import hooks go
    in: this module's and snapshot_restore_py's imports are the SDK's overhead."""
    runtime.snap_start = True
    try:
        import snapshot_restore_py as hooks  # type: ignore[import-not-found]

        hooks.register_before_snapshot(runtime.before_snapshot)
        hooks.register_after_restore(lambda: runtime.restored("after_restore"))
    except Exception:
        pass
    for name in ("awslambdaric.lambda_runtime_client", "lambda_runtime_client"):
        module = sys.modules.get(name)
        cls = getattr(module, "LambdaRuntimeClient", None) if module is not None else None
        original = getattr(cls, "restore_next", None) if cls is not None else None
        if original is None or getattr(original, "__coldstart_wrapped__", None) is not None:
            continue

        def restore_next(*args, **kwargs):
            runtime.before_snapshot()
            result = original(*args, **kwargs)
            runtime.restored("restore_next")
            return result

        restore_next.__coldstart_wrapped__ = original  # type: ignore[attr-defined]
        try:
            setattr(cls, "restore_next", restore_next)
        except Exception:
            pass
        break


# -- the records ------------------------------------------------------------------------------------
_static = None


def static_fields() -> dict:
    global _static
    if _static is None:
        env = os.environ
        fields = {"runtime_version": clip(runtime_version(env.get(C.LAMBDA_EXECUTION_ENV)), 50)}
        arch = architecture()
        if arch:
            fields["architecture"] = arch
        if env.get(C.LAMBDA_FUNCTION_NAME):
            fields["function_name"] = clip(env[C.LAMBDA_FUNCTION_NAME])
        memory = positive_int(env.get(C.LAMBDA_MEMORY_SIZE))
        if memory is not None and 128 <= memory <= 10240:
            fields["memory_allocated_mb"] = memory
        if env.get(C.LAMBDA_REGION):
            fields["region"] = clip(env[C.LAMBDA_REGION], 50)
        if env.get(C.LAMBDA_INITIALIZATION_TYPE):
            fields["init_type"] = clip(env[C.LAMBDA_INITIALIZATION_TYPE], 50)
        _static = fields
    return _static


def _context_text(context: "Any", name: str) -> "Optional[str]":
    value = getattr(context, name, None)
    return clip(value) if isinstance(value, str) and value else None


def build_record(runtime: "Runtime", invocation: "Invocation", complete: bool = True, end_ns: "Optional[int]" = None) -> dict:
    fields = static_fields()
    cold = invocation.cold
    invocation_id = cold.invocation_id if cold is not None else new_id()
    record = {
        "function_name": fields.get("function_name") or _context_text(invocation.context, "function_name") or "unknown",
        "invocation_id": invocation_id,
        "request_id": _context_text(invocation.context, "aws_request_id") or invocation_id,
        "timestamp": iso_utc(invocation.start_wall),
        "cold_start": cold is not None,
        "runtime_version": fields["runtime_version"],
        "start_kind": cold.start_kind if cold is not None else "warm",
        "sdk_version": C.SDK_VERSION,
        "module_source": "hooks",
    }
    for key in ("architecture", "memory_allocated_mb", "region", "init_type"):
        if key in fields:
            record[key] = fields[key]
    from . import _fingerprint

    version = _fingerprint.function_version(invocation.context)
    if version is not None:
        record["function_version"] = version
    # the early copy goes without it (computed after the response); warm records reuse the cold's
    code_id = _fingerprint.code_id(runtime) if (cold is not None and complete) else _fingerprint.cached_code_id()
    if code_id is not None:
        record["code_id"] = code_id
    if complete:
        end = end_ns if end_ns is not None else (invocation.end_ns or perf_counter_ns())
        execution_ms = (end - invocation.start_ns) / 1e6
        record["execution_duration_ms"] = int(round(execution_ms))
        record["billed_duration_ms"] = max(1, int(-(-execution_ms // 1)))
        memory = memory_used_mb(cold is not None)
        if memory is not None:
            record["memory_used_mb"] = memory
    else:
        record["complete"] = False
    if cold is not None:
        from ._report import module_timings, module_tree, self_by_key

        tree = runtime.package_tree()
        init_ms = cold.init_ms
        if init_ms is not None:
            record["init_duration_ms"] = int(round(init_ms))
        record["module_timings"] = module_timings(self_by_key(tree))
        record["module_tree"] = module_tree(runtime.recorder, tree, runtime.coverage)
        if cold.snap_start is not None:
            # the modules were loaded by the init that made the snapshot, not by this restore
            record["module_tree"]["snap_start"] = dict(cold.snap_start)
        record["sdk_overhead_ms"] = round((runtime.setup_ns + runtime.recorder.overhead_ns) / 1e3) / 1e3
    return record


def send_early(runtime: "Runtime", invocation: "Invocation") -> None:
    cold = invocation.cold
    if cold is None or invocation.finished or cold.early_sent or cold.complete_sent:
        return
    cold.early_sent = True
    sink(runtime, invocation.config).cold(build_record(runtime, invocation, complete=False))


def send_complete(runtime: "Runtime", invocation: "Invocation", end_ns: int, at_deadline: bool = False) -> "Optional[threading.Event]":
    cold = invocation.cold
    if cold is None or cold.complete_sent or (at_deadline and invocation.finished):
        return None
    cold.complete_sent = True
    return sink(runtime, invocation.config).cold(build_record(runtime, invocation, True, end_ns))


_WARM_VARYING = ("invocation_id", "request_id", "timestamp", "cold_start", "start_kind", "execution_duration_ms", "billed_duration_ms", "memory_used_mb")


def warm_template(runtime: "Runtime", invocation: "Invocation") -> dict:
    """What a warm record of this process holds whatever the invocation: the extension's template."""
    record = build_record(runtime, invocation)
    for key in _WARM_VARYING:
        record.pop(key, None)
    return record


def send_warm(runtime: "Runtime", invocation: "Invocation") -> None:
    """After the response: left to the extension when it builds warm records from Lambda's reports
    (it samples them too), else sampled, built and handed to the sink."""
    out = sink(runtime, invocation.config)
    rate = invocation.config.sample_rate
    leave = getattr(out, "leave_warm", None)
    request_id = _context_text(invocation.context, "aws_request_id")
    if leave is not None and request_id is not None:
        if leave(request_id, lambda: warm_template(runtime, invocation), lambda: build_record(runtime, invocation), rate):
            return None
    if rate < 1.0:
        import random

        if not random.random() < rate:
            return None
    out.warm(build_record(runtime, invocation))
    return None
