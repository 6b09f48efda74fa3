"""One runtime per process: the recorder and hooks of init, then each invocation to its record.

What runs on the handler's path is kept to a few clock reads and a timer:

- The first invocation closes init (the recorder stops, the finder leaves sys.meta_path) and
  classifies the start; nothing else of the SDK runs before the handler.
- The records are built and handed to their transport after the response (after_response): where
  the SDK can hook AWS's Python runtime interface client (LambdaRuntimeClient.wait_next_invocation,
  called after the response was posted and before the next event is asked for, i.e. before Lambda
  may freeze the environment), in that call, which waits until the cold-start record's bytes have
  left the process (at most `timeout`); elsewhere on the SDK's background thread at once.
- A first invocation still running after 250 ms hands off an early copy of its cold-start record
  ("complete": false, without what only the end knows), from the background thread; one still
  running `timeout + 250 ms` before Lambda's deadline gets its complete record sent then.

Nothing here raises into the function.
"""

import atexit
import os
import sys
import threading
import time
from time import perf_counter_ns

from . import _constants as C
from ._config import Config
from ._hooks import ImportHooks
from ._recorder import Recorder

_CLOCK_TICKS = None


def _process_age_s() -> "Optional[float]":
    """Seconds since the process started (Linux: /proc/self/stat's start time, 10 ms steps)."""
    global _CLOCK_TICKS
    try:
        if _CLOCK_TICKS is None:
            _CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        fields = stat[stat.rindex(")") + 2 :].split()
        started = int(fields[19]) / _CLOCK_TICKS
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except Exception:
        return None


def classify_start(first: bool, init_type: "Optional[str]", gap_ms: "Optional[float]") -> str:
    """cold, proactive (more than 10 s idle between init and the first invocation), provisioned, warm."""
    if not first:
        return "warm"
    if init_type == "provisioned-concurrency":
        return "provisioned"
    if init_type == "snap-start":
        # a restore from a SnapStart snapshot delays the request it serves, like an on-demand
        # init; the gap since the snapshot's init (hours, days) says nothing about proactivity
        return "cold"
    if gap_ms is not None and gap_ms > C.PROACTIVE_GAP_MS:
        return "proactive"
    return "cold"


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


class ColdStart:
    def __init__(self, init_ms: "Optional[float]", start_kind: str, snap_start: "Optional[dict]" = None) -> None:
        self.init_ms = init_ms  # None: a restore whose start the SDK did not see
        self.start_kind = start_kind
        self.snap_start = snap_start  # {"init_ms", "restore_ms"?, "detected_by"} for a restore
        self.invocation_id = new_id()
        self.early_sent = False
        self.complete_sent = False


class Invocation:
    __slots__ = ("start_ns", "start_wall", "context", "config", "cold", "finished", "end_ns")

    def __init__(self, config: "Config", context: "Any", cold: "Optional[ColdStart]") -> None:
        self.start_ns = perf_counter_ns()
        self.start_wall = time.time()
        self.context = context
        self.config = config
        self.cold = cold
        self.finished = False
        self.end_ns: Optional[int] = None


class Runtime:
    """The process's state. Created when the SDK is first imported (hooks installed then)."""

    def __init__(self, coverage: str) -> None:
        started = perf_counter_ns()
        self.recorder = Recorder()
        self.coverage = coverage
        self.task_root = os.environ.get(C.LAMBDA_TASK_ROOT) or os.getcwd()
        runtime_dir = os.environ.get(C.LAMBDA_RUNTIME_DIR)
        excluded = (os.path.abspath(runtime_dir).rstrip(os.sep) + os.sep,) if runtime_dir else ()
        self.hooks = ImportHooks(self.recorder, excluded)
        self.started = False
        self.setup_ns = 0
        self.sdk_loaded_at = started
        self._worker = None
        self._sinks: dict = {}
        self._tree = None
        self._tree_lock = threading.Lock()
        self._sink_lock = threading.Lock()
        self._attributor = None
        self._pending: List[Callable[[], Optional[threading.Event]]] = []
        self._pending_lock = threading.Lock()
        self.client_hooked = False
        self.snap_start = False  # AWS_LAMBDA_INITIALIZATION_TYPE=snap-start
        self.snapshot_init_ms: Optional[float] = None  # process start -> before the snapshot
        self.restored_ns: Optional[int] = None  # clock when the restore was seen
        self.restore_detected_by: Optional[str] = None
        self.handler_module = None  # the wrapped handler's module (its file is in code_id)
        self._exit_registered = False
        self._setup_started = started

    def finish_setup(self) -> None:
        self.setup_ns += perf_counter_ns() - self._setup_started

    # -- background machinery, created on first use (after init) ------------------------------
    @property
    def worker(self):
        if self._worker is None:
            from ._worker import Worker

            self._worker = Worker()
        return self._worker

    @staticmethod
    def uses_stream(config: "Config") -> bool:
        """The extension's stream: transport auto, the extension's file present, not switched off,
        no endpoint given in code."""
        return config.transport == "auto" and config.extension and not config.endpoint_from_option and os.path.exists(config.extension_path)

    def sink(self, config: "Config"):
        key = (config.transport, config.endpoint, config.api_key, config.extension, config.endpoint_from_option)
        sink = self._sinks.get(key)
        if sink is None:
            with self._sink_lock:
                sink = self._sinks.get(key)
                if sink is None:
                    from . import _delivery as D

                    if config.transport == "logs":
                        sink = D.LogsSink()
                    else:
                        direct = D.DirectSender(config, self.worker)
                        sink = D.StreamSink(config, self.worker, direct) if self.uses_stream(config) else direct
                    self._sinks[key] = sink
        return sink

    def register_exit(self) -> None:
        """At interpreter exit (outside Lambda, or a runtime that exits): what waits gets a last
        try, and no background thread is left writing to stdout while the interpreter finalises
        (which aborts it). Registered as the first invocation starts, on the main thread."""
        if not self._exit_registered:
            self._exit_registered = True
            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        """At exit: the background thread's work finishes, what is still undelivered gets one last
        try; at most 1 s each."""
        try:
            self.run_pending(1.0)
            if self._worker is not None:
                self._worker.drain(1.0)
            deadline = time.monotonic() + 1.0
            for sink in list(self._sinks.values()):
                if sink.pending() and time.monotonic() < deadline:
                    sink.flush_now(deadline)
        except Exception:
            pass

    # -- after the response ------------------------------------------------------------------
    def after_response(self, work: "Callable[[], Optional[threading.Event]]") -> None:
        """Runs `work` once the response has gone: in the runtime client's next-event call when
        it is hooked, else at once on the background thread."""
        if self.client_hooked:
            with self._pending_lock:
                self._pending.append(work)
        else:
            self.worker.call_soon(lambda: work())

    def run_pending(self, hold_s: float) -> None:
        """Runs the work queued by after_response; waits until what it handed off has left the
        process, at most hold_s."""
        with self._pending_lock:
            work, self._pending = self._pending, []
        events = []
        for job in work:
            try:
                event = job()
                if event is not None:
                    events.append(event)
            except Exception:
                pass
        deadline = time.monotonic() + hold_s
        for event in events:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            event.wait(left)

    def hook_runtime_client(self, hold_s: "Callable[[], float]") -> None:
        """AWS's Python runtime interface client (awslambdaric, the bootstrap of Lambda's
        python3.x runtimes) asks for the next event with LambdaRuntimeClient.wait_next_invocation
        after posting the response: the one moment after the response at which the environment
        cannot be frozen yet. The SDK's after-response work runs there. Its result and errors pass
        through unchanged."""
        if self.client_hooked:
            return
        for name in ("awslambdaric.lambda_runtime_client", "lambda_runtime_client"):
            module = sys.modules.get(name)
            cls = getattr(module, "LambdaRuntimeClient", None) if module is not None else None
            original = getattr(cls, "wait_next_invocation", None) if cls is not None else None
            if original is None or getattr(original, "__coldstart_wrapped__", None) is not None:
                continue
            runtime = self

            def wait_next_invocation(*args, **kwargs):
                try:
                    runtime.run_pending(hold_s())
                except Exception:
                    pass
                return original(*args, **kwargs)

            wait_next_invocation.__coldstart_wrapped__ = original  # type: ignore[attr-defined]
            try:
                setattr(cls, "wait_next_invocation", wait_next_invocation)
                self.client_hooked = True
                return
            except Exception:
                pass

    # -- SnapStart ---------------------------------------------------------------------------------
    def prepare_snap_start(self) -> None:
        """With SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start) init runs once, when the
        version is published, and ends in a snapshot; each environment then starts by restoring
        it, and that restore is what delays the first request. The SDK registers the runtime hooks
        of Lambda's Python runtimes (snapshot_restore_py: before_snapshot, after_restore; its
        before_snapshot runs after the function's own, its after_restore before them, since hooks
        run in reverse order of registration before the snapshot and in order after the restore),
        and wraps the runtime client's restore_next (the call that returns once the snapshot has
        been restored) where that client is loaded: whichever sees the restore first dates it.
        Called before the import hooks go in: snapshot_restore_py's import is the SDK's overhead."""
        self.snap_start = True
        try:
            import snapshot_restore_py as hooks  # type: ignore[import-not-found]

            hooks.register_before_snapshot(self.before_snapshot)
            hooks.register_after_restore(lambda: self.restored("after_restore"))
        except Exception:
            pass
        for name in ("awslambdaric.lambda_runtime_client", "lambda_runtime_client"):
            module = sys.modules.get(name)
            cls = getattr(module, "LambdaRuntimeClient", None) if module is not None else None
            original = getattr(cls, "restore_next", None) if cls is not None else None
            if original is None or getattr(original, "__coldstart_wrapped__", None) is not None:
                continue
            runtime = self

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

    def before_snapshot(self) -> None:
        """Init ends here: what is loaded is in the snapshot. Never raises."""
        try:
            if self.snapshot_init_ms is not None or self.started:
                return
            now_ns = perf_counter_ns()
            self.recorder.close()
            self.hooks.uninstall()
            age_s = _process_age_s()
            sdk_age_ms = (now_ns - self.sdk_loaded_at) / 1e6
            self.snapshot_init_ms = max(age_s * 1000.0 if age_s is not None else sdk_age_ms, sdk_age_ms)
        except Exception:
            pass

    def restored(self, by: str) -> None:
        if self.restored_ns is None and not self.started:
            self.restored_ns = perf_counter_ns()
            self.restore_detected_by = by

    # -- init and the records --------------------------------------------------------------------
    def close_init(self) -> "ColdStart":
        now_ns = perf_counter_ns()
        if self.snap_start:
            self.before_snapshot()  # no-op when the snapshot was seen
            self.started = True
            info = {"init_ms": round(self.snapshot_init_ms or 0.0, 3)}
            restore_ms = None
            if self.restored_ns is not None:
                # from the moment the process runs again to this invocation: the runtime's and the
                # function's after_restore hooks; the microVM's own resume is not visible inside
                restore_ms = (now_ns - self.restored_ns) / 1e6
                info["restore_ms"] = round(restore_ms, 3)
                info["restore_seen_by"] = self.restore_detected_by
            return ColdStart(restore_ms, classify_start(True, "snap-start", None), info)
        self.started = True
        last_exit = self.recorder.last_exit
        self.recorder.close()
        self.hooks.uninstall()
        age_s = _process_age_s()
        sdk_age_ms = (now_ns - self.sdk_loaded_at) / 1e6
        now_ms = age_s * 1000.0 if age_s is not None else sdk_age_ms
        # init from process start (10 ms steps), never less than what the SDK itself saw
        now_ms = max(now_ms, sdk_age_ms)
        gap_ms = (now_ns - last_exit) / 1e6 if last_exit is not None else None
        kind = classify_start(True, os.environ.get(C.LAMBDA_INITIALIZATION_TYPE), gap_ms)
        init_ms = now_ms - gap_ms if kind == "proactive" and gap_ms is not None else now_ms
        return ColdStart(init_ms, kind)

    def package_tree(self):
        with self._tree_lock:
            if self._tree is None:
                from ._attribution import Attributor
                from ._report import fold

                started = perf_counter_ns()
                self._attributor = Attributor(self.task_root)
                self._tree = fold(self.recorder.root, self._attributor.attribute)
                self.attribution_ns = perf_counter_ns() - started
            return self._tree

    def attribute(self, name: str, origin: "Optional[str]"):
        """(key, version) of a loaded module; after package_tree()."""
        self.package_tree()
        return self._attributor.attribute(name, origin)


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
        if cold.init_ms is not None:
            record["init_duration_ms"] = int(round(cold.init_ms))
        record["module_timings"] = module_timings(self_by_key(tree))
        record["module_tree"] = module_tree(runtime.recorder, tree, runtime.coverage)
        if cold.snap_start is not None:
            # the modules were loaded by the init that made the snapshot, not by this restore
            record["module_tree"]["snap_start"] = dict(cold.snap_start)
        record["sdk_overhead_ms"] = round((runtime.setup_ns + runtime.recorder.overhead_ns) / 1e3) / 1e3
    return record


def begin(runtime: "Runtime", config: "Config", context: "Any") -> "Optional[Invocation]":
    """An invocation starts. Never raises."""
    try:
        if runtime.started:
            return Invocation(config, context, None)
        cold = runtime.close_init()
        invocation = Invocation(config, context, cold)
        runtime.hook_runtime_client(lambda: config.timeout_ms / 1000.0)
        runtime.register_exit()
        worker = runtime.worker
        if runtime.uses_stream(config):
            # open the extension's connection now, so that it is up when the record is written after
            # the response; the other sinks are created after the response (no import on its path)
            runtime.sink(config).connect()
        worker.call_later(C.EARLY_COPY_AFTER_MS / 1000.0, lambda: _send_early(runtime, invocation))
        remaining = None
        get_remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(get_remaining):
            try:
                remaining = float(get_remaining())
            except Exception:
                remaining = None
        if remaining is not None and remaining > 0:
            margin = config.timeout_ms + 250
            delay_ms = max(remaining - margin, remaining / 2)
            worker.call_later(delay_ms / 1000.0, lambda: _send_complete(runtime, invocation, perf_counter_ns(), True))
        return invocation
    except Exception:
        return None


def _send_early(runtime: "Runtime", invocation: "Invocation") -> None:
    cold = invocation.cold
    if cold is None or invocation.finished or cold.early_sent or cold.complete_sent:
        return
    cold.early_sent = True
    runtime.sink(invocation.config).cold(build_record(runtime, invocation, complete=False))


def _send_complete(runtime: "Runtime", invocation: "Invocation", end_ns: int, at_deadline: bool = False) -> "Optional[threading.Event]":
    cold = invocation.cold
    if cold is None or cold.complete_sent or (at_deadline and invocation.finished):
        return None
    cold.complete_sent = True
    return runtime.sink(invocation.config).cold(build_record(runtime, invocation, True, end_ns))


def finish(runtime: "Runtime", invocation: "Optional[Invocation]") -> None:
    """The handler has returned or raised. Never raises, never waits."""
    if invocation is None or invocation.finished:
        return
    try:
        invocation.finished = True
        end_ns = invocation.end_ns = perf_counter_ns()
        if invocation.cold is not None:
            runtime.after_response(lambda: _send_complete(runtime, invocation, end_ns))
            return
        runtime.after_response(lambda: _send_warm(runtime, invocation))
    except Exception:
        pass


_WARM_VARYING = ("invocation_id", "request_id", "timestamp", "cold_start", "start_kind", "execution_duration_ms", "billed_duration_ms", "memory_used_mb")


def warm_template(runtime: "Runtime", invocation: "Invocation") -> dict:
    """What a warm record of this process holds whatever the invocation: the extension's template."""
    record = build_record(runtime, invocation)
    for key in _WARM_VARYING:
        record.pop(key, None)
    return record


def _send_warm(runtime: "Runtime", invocation: "Invocation") -> None:
    """After the response: left to the extension when it builds warm records from Lambda's reports
    (it samples them too), else sampled, built and handed to the sink."""
    sink = runtime.sink(invocation.config)
    rate = invocation.config.sample_rate
    leave = getattr(sink, "leave_warm", None)
    request_id = _context_text(invocation.context, "aws_request_id")
    if leave is not None and request_id is not None:
        if leave(request_id, lambda: warm_template(runtime, invocation), lambda: build_record(runtime, invocation), rate):
            return None
    if rate < 1.0:
        import random

        if not random.random() < rate:
            return None
    sink.warm(build_record(runtime, invocation))
    return None
