"""One runtime per process: the recorder and hooks of init, each invocation's start and end.

Only what init and the response's path run lives here; the records are built by _records.py,
loaded after the response. The explanations are comments rather than docstrings: a docstring is
loaded with the code at every cold start.
"""

# What runs on the handler's path is kept to a few clock reads, a lock and a thread's start:
#
# - The first invocation closes init (the recorder stops, the finder leaves sys.meta_path) and
#   classifies the start; the process's age (/proc) and the invocation's id are read when the
#   record is built. Nothing else of the SDK runs before the handler, and no module is imported.
# - It starts the watcher, a thread that waits on a lock released when the handler returns: a
#   first invocation still running after 250 ms gets an early copy of its cold-start record
#   ("complete": false, without what only the end knows) from it, and one still running
#   `timeout + 250 ms` before Lambda's deadline gets its complete record sent then.
# - The records are built and handed to their transport after the response (after_response):
#   where the SDK can hook AWS's Python runtime interface client
#   (LambdaRuntimeClient.wait_next_invocation, called after the response was posted and before the
#   next event is asked for, i.e. before Lambda may freeze the environment), in that call, which
#   waits until the cold-start record's bytes have left the process (at most `timeout`);
#   elsewhere at once on a background thread (the first invocation's on the watcher, the others'
#   on the SDK's worker thread).
#
# Nothing here raises into the function.

import atexit
import os
import sys
import time
from _thread import allocate_lock, start_new_thread
from time import monotonic, perf_counter_ns

from . import _constants as C
from ._hooks import ImportHooks
from ._recorder import Recorder

_CLOCK_TICKS = None


def _process_age_s() -> "Optional[float]":
    # Seconds since the process started (Linux: /proc/self/stat's start time, 10 ms steps).
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
    # cold, proactive (more than 10 s idle between init and the first invocation), provisioned, warm
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


class ColdStart:
    def __init__(self, init_ms: "Optional[float]", start_kind: str, snap_start: "Optional[dict]" = None, timing: "Optional[tuple]" = None) -> None:
        self._init_ms = init_ms  # None: a restore whose start the SDK did not see
        # (clock at the first invocation's start, at the SDK's load, the idle gap to leave out or
        # None): init_ms is computed from them when a record asks, not on the response's path
        self._timing = timing
        self.start_kind = start_kind
        self.snap_start = snap_start  # {"init_ms", "restore_ms"?, "detected_by"} for a restore
        self.early_sent = False
        self.complete_sent = False

    @property
    def init_ms(self) -> "Optional[float]":
        # from the process's start (10 ms steps) to the first invocation's start, never less than
        # what the SDK itself saw; computed as the process's age now minus the time since then
        if self._init_ms is None and self._timing is not None:
            at_ns, loaded_ns, gap_ms = self._timing
            age_s = _process_age_s()
            sdk_ms = (at_ns - loaded_ns) / 1e6
            at_ms = age_s * 1000.0 - (perf_counter_ns() - at_ns) / 1e6 if age_s is not None else sdk_ms
            at_ms = max(at_ms, sdk_ms)
            self._init_ms = at_ms - gap_ms if gap_ms is not None else at_ms
        return self._init_ms

    @property
    def invocation_id(self) -> str:
        # made when the first record asks for it; dict.setdefault keeps one for every copy
        d = self.__dict__
        value = d.get("_id")
        if value is None:
            from ._records import new_id

            value = d.setdefault("_id", new_id())
        return value


class Invocation:
    __slots__ = ("start_ns", "start_wall", "context", "config", "cold", "finished", "end_ns", "done")

    def __init__(self, config: "Config", context: "Any", cold: "Optional[ColdStart]") -> None:
        self.start_ns = perf_counter_ns()
        self.start_wall = time.time()
        self.context = context
        self.config = config
        self.cold = cold
        self.finished = False
        self.end_ns: Optional[int] = None
        self.done = None  # the first invocation's: a lock held until the handler returns


class Runtime:
    # The process's state. Created when the SDK is first imported (hooks installed then).

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
        self._worker_lock = allocate_lock()
        self._sinks: dict = {}
        self._sink_lock = allocate_lock()
        self._tree = None
        self._tree_lock = allocate_lock()
        self._attributor = None
        self._pending: List[Callable[[], Optional[threading.Event]]] = []
        self._pending_lock = allocate_lock()
        # the first invocation's after-response work when the runtime client is not hooked: run by
        # the watcher once the handler has returned, or at exit, whichever comes first
        self._handover = None
        self._handover_lock = allocate_lock()
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

    @property
    def worker(self):
        # the SDK's worker thread (timers, network I/O), created on first use, after the response
        if self._worker is None:
            from ._worker import Worker

            with self._worker_lock:
                if self._worker is None:
                    self._worker = Worker()
        return self._worker

    def register_exit(self) -> None:
        # At interpreter exit (outside Lambda, or a runtime that exits) what waits gets a last try
        # (_records.at_exit). Registered as the first invocation starts, on the main thread.
        if not self._exit_registered:
            self._exit_registered = True
            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        try:
            from ._records import at_exit

            at_exit(self)
        except Exception:
            pass

    # -- after the response ------------------------------------------------------------------
    def after_response(self, work: "Callable[[], Optional[threading.Event]]") -> None:
        # Runs `work` once the response has gone: in the runtime client's next-event call when it
        # is hooked, else at once on the worker thread.
        if self.client_hooked:
            with self._pending_lock:
                self._pending.append(work)
        else:
            self.worker.call_soon(lambda: work())

    def hand_over(self, timeout: "Optional[float]" = None) -> None:
        # Runs the first invocation's after-response work left for a thread, once (the watcher's
        # and the exit's calls race for it; the second waits for the first, at most `timeout`).
        if not self._handover_lock.acquire(True, -1 if timeout is None else timeout):
            return
        try:
            job, self._handover = self._handover, None
            if job is not None:
                job()
        except Exception:
            pass
        finally:
            self._handover_lock.release()

    def run_pending(self, hold_s: float) -> None:
        # Runs the work queued by after_response; waits until what it handed off has left the
        # process, at most hold_s.
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
        deadline = monotonic() + hold_s
        for event in events:
            left = deadline - monotonic()
            if left <= 0:
                break
            event.wait(left)

    def hook_runtime_client(self, hold_s: "Callable[[], float]") -> None:
        # AWS's Python runtime interface client (awslambdaric, the bootstrap of Lambda's python3.x
        # runtimes) asks for the next event with LambdaRuntimeClient.wait_next_invocation after
        # posting the response: the one moment after the response at which the environment cannot
        # be frozen yet. The SDK's after-response work runs there. Its result and errors pass
        # through unchanged.
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

    # -- SnapStart (_records.prepare_snap_start) ---------------------------------------------------
    def prepare_snap_start(self) -> None:
        from ._records import prepare_snap_start

        prepare_snap_start(self)

    def before_snapshot(self) -> None:
        # Init ends here: what is loaded is in the snapshot. Never raises.
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
        gap_ms = (now_ns - last_exit) / 1e6 if last_exit is not None else None
        kind = classify_start(True, os.environ.get(C.LAMBDA_INITIALIZATION_TYPE), gap_ms)
        return ColdStart(None, kind, None, (now_ns, self.sdk_loaded_at, gap_ms if kind == "proactive" else None))

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
        # (key, version) of a loaded module; after package_tree()
        self.package_tree()
        return self._attributor.attribute(name, origin)


def _watch(runtime: "Runtime", invocation: "Invocation", done: "Any", deadline_s: "Optional[float]", stream: bool) -> None:
    # The first invocation's watcher (its own thread): opens the extension's stream when it is to
    # be used (so that it is up when the record is written after the response), sends the early
    # copy and the deadline's copy if the handler is still running then, and once it has
    # returned runs the after-response work left to it. Waits on the invocation's lock: nothing
    # runs here while the handler does, unless one of those moments comes. What fails here is
    # skipped, never the wait for the handler's end and the work after it.
    config = invocation.config
    try:
        if stream and os.path.exists(config.extension_path):
            from ._records import sink

            sink(runtime, config).connect()
    except Exception:
        pass
    steps = [(C.EARLY_COPY_AFTER_MS / 1000.0, False)]
    if deadline_s is not None:
        steps.append((deadline_s, True))
        steps.sort()
    started = invocation.start_ns
    for due, at_deadline in steps:
        if done.acquire(True, max(0.0, due - (perf_counter_ns() - started) / 1e9)):
            break
        try:
            from . import _records

            if at_deadline:
                _records.send_complete(runtime, invocation, perf_counter_ns(), True)
            else:
                _records.send_early(runtime, invocation)
        except Exception:
            pass
    else:
        done.acquire()
    runtime.hand_over()
    if not runtime.client_hooked:
        try:
            runtime.worker  # the later invocations' after-response work goes there: loaded now, off their path
        except Exception:
            pass


def begin(runtime: "Runtime", config: "Config", context: "Any") -> "Optional[Invocation]":
    # An invocation starts. Never raises.
    try:
        if runtime.started:
            return Invocation(config, context, None)
        cold = runtime.close_init()
        invocation = Invocation(config, context, cold)
        runtime.hook_runtime_client(lambda: config.timeout_ms / 1000.0)
        runtime.register_exit()
        deadline_s = None
        get_remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(get_remaining):
            try:
                remaining = float(get_remaining())
            except Exception:
                remaining = 0.0
            if remaining > 0:
                margin = config.timeout_ms + 250
                deadline_s = max(remaining - margin, remaining / 2) / 1000.0
        stream = config.transport == "auto" and config.extension and not config.endpoint_from_option
        done = invocation.done = allocate_lock()
        done.acquire()
        try:
            # _thread, not threading.Thread: Thread.start() waits until the new thread has been
            # scheduled and has started, a context switch on the first invocation's path (and
            # milliseconds on a busy machine). A _thread thread is never joined at exit.
            start_new_thread(_watch, (runtime, invocation, done, deadline_s, stream))
        except Exception:
            invocation.done = None  # no watcher: finish() hands the work to the worker thread
        return invocation
    except Exception:
        return None


def _complete(runtime: "Runtime", invocation: "Invocation", end_ns: int) -> "Optional[threading.Event]":
    from ._records import send_complete

    return send_complete(runtime, invocation, end_ns)


def _warm(runtime: "Runtime", invocation: "Invocation") -> None:
    from ._records import send_warm

    send_warm(runtime, invocation)


def finish(runtime: "Runtime", invocation: "Optional[Invocation]") -> None:
    # The handler has returned or raised. Never raises, never waits.
    if invocation is None or invocation.finished:
        return
    try:
        invocation.finished = True
        end_ns = invocation.end_ns = perf_counter_ns()
        if invocation.cold is None:
            runtime.after_response(lambda: _warm(runtime, invocation))
            return
        job = lambda: _complete(runtime, invocation, end_ns)  # noqa: E731
        done = invocation.done
        if runtime.client_hooked or done is None:
            runtime.after_response(job)
        else:
            runtime._handover = job
        if done is not None:
            done.release()
    except Exception:
        pass
