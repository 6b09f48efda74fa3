"""The module-load timeline: self and inclusive time per module, without double counting.

A port of sdk/src/runtime/recorder.ts. Loads nest (a module's body imports another), so the
recorder keeps a stack of open loads. Every enter/exit event closes a segment of wall time [last
event, now] and gives it to the load on top of the stack: that is self time. Time spent in the
recorder itself is measured (a second clock read at the end of each event) and kept out of every
segment, so the self times add up to the module-load time minus the SDK's own bookkeeping, reported
as overhead.

Unlike the Node.js recorder, nodes here are modules, not packages: which distribution a module
belongs to is only known by reading installed metadata, which is too slow for init. The report
(_report.py) folds the module tree into the package tree after the first response; self times
can be summed at any granularity, so nothing is lost by deciding later.

Only the thread that created the recorder is recorded (Lambda imports the handler on the main
thread; an import on another thread would interleave with the stack).

The hooks run at every import of init, so an event only notes its clock readings and names in a
list; the tree, the self times and the overhead are worked out from that list when they are
first read (after the response), with the same arithmetic as if it had been done at each event.
"""

from _thread import allocate_lock
from _thread import get_ident as _get_ident
from time import perf_counter_ns as now


class Node:
    __slots__ = ("name", "origin", "self_ns", "inclusive_ns", "loads", "failed", "children")

    def __init__(self, name: str, origin: "Optional[str]") -> None:
        self.name = name  # module name ("yaml.reader"); "(init)" for the root
        self.origin = origin  # spec.origin: a file path, "built-in", "frozen", or None
        self.self_ns = 0
        self.inclusive_ns = 0
        self.loads = 0  # completed loads (a failed import that is retried loads twice)
        self.failed = 0  # loads that raised
        self.children: Optional[Dict[str, "Node"]] = None


# An open load is a list, [node, start, failed] (filled in when the events are replayed): cheaper
# to make than an object, at every import of init.
Frame = list

# the kinds of event in Recorder._events
_ENTER, _EXIT, _EXCLUDE, _CLOSE = 0, 1, 2, 3


class Recorder:
    def __init__(self) -> None:
        self.active = True
        self.thread = _get_ident()
        self.last_exit: Optional[int] = None  # clock at the end of the last load
        # (kind, clock at the event's start, clock at its end, frame, name or failed, origin,
        # finder asked at), in order
        self._events: List[tuple] = []
        self._replayed = 0
        self._replay_lock = allocate_lock()
        self._root = Node("(init)", None)
        self._load_ns = 0  # sum of the outermost loads: the module-load part of init
        self._overhead_ns = 0  # the SDK's own time in the recorder and the hooks
        self._modules = 0  # loads seen
        self._stack: List[Frame] = []
        self._last = now()

    # -- what the hooks call, at every import --------------------------------------------------
    def enter(self, name: str, origin: "Optional[str]", requested_at: "Optional[int]" = None) -> "Optional[Frame]":
        """A module starts loading. `requested_at`: when its finder was asked (resolution is its
        own time, if that came after the last event). Returns the frame to pass to exit()."""
        t = now()
        if not self.active or _get_ident() != self.thread:
            return None
        frame = [None, 0, False]
        self._events.append((_ENTER, t, frame, name, origin, requested_at, now()))
        return frame

    def exit(self, frame: "Optional[Frame]", failed: bool = False) -> None:
        t = now()
        if frame is None or not self.active:
            return  # after close() every open load has ended
        self.last_exit = t
        self._events.append((_EXIT, t, frame, failed, None, None, now()))

    def exclude(self, started: int) -> None:
        """Time since `started` was the SDK's (a search that importlib repeats): overhead."""
        if not self.active:
            return
        self._events.append((_EXCLUDE, started, None, None, None, None, now()))

    def close(self) -> None:
        """Stops recording (the first invocation starts): loads still open end now; later loads
        (imports inside the handler) are not part of init and are not recorded."""
        if not self.active:
            return
        t = now()
        self._events.append((_CLOSE, t, None, None, None, None, t))
        self.active = False

    # -- what the report reads, after the response -----------------------------------------------
    @property
    def root(self) -> "Node":
        self._replay()
        return self._root

    @property
    def load_ns(self) -> int:
        self._replay()
        return self._load_ns

    @load_ns.setter
    def load_ns(self, value: int) -> None:
        self._replay()
        self._load_ns = value

    @property
    def overhead_ns(self) -> int:
        self._replay()
        return self._overhead_ns

    @property
    def modules(self) -> int:
        self._replay()
        return self._modules

    def _replay(self) -> None:
        # Each event as it happened: [t, end] are its clock readings at its start and at the end
        # of its bookkeeping; the segment before t goes to the load on top of the stack, [t, end]
        # is overhead.
        with self._replay_lock:
            events = self._events
            count = len(events)
            for i in range(self._replayed, count):
                kind, t, frame, name, origin, requested_at, end = events[i]
                if kind == _ENTER:
                    self._enter(t, frame, name, origin, requested_at)
                elif kind == _EXIT:
                    frame[2] = name  # failed
                    self._pop(t, frame)
                elif kind == _EXCLUDE:
                    spent = end - t  # t: when the repeated search started
                    self._overhead_ns += spent
                    if self._last >= t:
                        self._last = end
                    else:
                        self._last += spent
                    continue
                else:
                    while self._stack:
                        self._pop(t, self._stack[-1])
                if kind == _EXIT and frame[0] is None:
                    continue
                self._overhead_ns += end - t
                self._last = end
            self._replayed = count

    def _enter(self, t: int, frame: "Frame", name: str, origin: "Optional[str]", requested_at: "Optional[int]") -> None:
        last = self._last
        start = requested_at if requested_at is not None and requested_at > last else t
        stack = self._stack
        if stack:
            parent = stack[-1][0]
            if start > last:
                parent.self_ns += start - last
        else:
            parent = self._root
        children = parent.children
        if children is None:
            children = parent.children = {}
        node = children.get(name)
        if node is None:
            node = children[name] = Node(name, origin)
        frame[0] = node
        frame[1] = start
        stack.append(frame)
        self._modules += 1
        if t > start:
            # resolution (finder asked -> loader called) is the new module's own time
            node.self_ns += t - start

    def _pop(self, t: int, frame: "Frame") -> None:
        stack = self._stack
        # by identity: frames are lists, and two can be equal
        at = len(stack) - 1
        while at >= 0 and stack[at] is not frame:
            at -= 1
        if at < 0:
            frame[0] = None  # not open (any more): nothing to end
            return
        # Frames above `frame` never reported their end (a loader that raised between
        # create_module and exec_module): they end now.
        for i in range(len(stack) - 1, at - 1, -1):
            node, start, failed = stack[i]
            if i == len(stack) - 1:
                segment = t - self._last
                if segment > 0:
                    node.self_ns += segment
            node.inclusive_ns += t - start
            node.loads += 1
            if failed:
                node.failed += 1
            if i == 0:
                self._load_ns += t - start
        del stack[at:]
