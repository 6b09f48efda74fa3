"""The SDK's one background thread: timers and network I/O, never on the handler's path.

A daemon thread with a queue of timed jobs (heap by due time). It starts at the first invocation
(nothing of it runs during init). A job never raises out of the loop. Lambda freezes the whole
process between invocations: a job whose time came while frozen runs as soon as it is thawed.
"""

import _thread
import heapq
import itertools
import threading
import time


class Worker:
    def __init__(self) -> None:
        self._jobs: List[Tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._thread = None
        self._running = False
        self._ident = None  # the thread's, once it runs

    def _ensure(self) -> None:
        if self._thread is None:
            # _thread, not threading.Thread: Thread.start() waits until the new thread has been
            # scheduled and has started, a context switch on the first invocation's path (and
            # milliseconds on a busy machine). A _thread thread is a daemon: never joined at exit.
            self._thread = True
            _thread.start_new_thread(self._run, ())

    def call_later(self, delay_s: float, job: "Callable[[], None]") -> None:
        with self._cond:
            heapq.heappush(self._jobs, (time.monotonic() + max(0.0, delay_s), next(self._seq), job))
            self._ensure()
            self._cond.notify_all()

    def call_soon(self, job: "Callable[[], None]") -> None:
        self.call_later(0.0, job)

    def drain(self, seconds: float) -> None:
        """Waits (at most `seconds`) until no job that is due has yet to run: at interpreter exit,
        the work handed to the thread just before (a record being built) still gets done."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while self._thread is not None and not self.on_thread():
                now = time.monotonic()
                due = bool(self._jobs) and self._jobs[0][0] <= now
                if not (due or self._running) or now >= deadline:
                    return
                self._cond.wait(min(0.01, deadline - now))

    def on_thread(self) -> bool:
        return self._ident is not None and _thread.get_ident() == self._ident

    def _run(self) -> None:
        self._ident = _thread.get_ident()
        while True:
            with self._cond:
                while True:
                    if self._jobs:
                        wait = self._jobs[0][0] - time.monotonic()
                        if wait <= 0:
                            _, _, job = heapq.heappop(self._jobs)
                            self._running = True
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
            try:
                job()
            except Exception:
                pass  # never break the function
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
