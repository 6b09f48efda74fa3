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
"""

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


# An open load on the stack is a list, [node, start, failed]: cheaper to make than an object, at
# every import of init.
Frame = list
_new_node = object.__new__


class Recorder:
    def __init__(self) -> None:
        self.active = True
        self.thread = _get_ident()
        self.root = Node("(init)", None)
        self.load_ns = 0  # sum of the outermost loads: the module-load part of init
        self.overhead_ns = 0  # the SDK's own time in the recorder and the hooks
        self.modules = 0  # loads seen
        self.last_exit: Optional[int] = None  # clock at the end of the last load
        self._stack: List[Frame] = []
        self._last = now()

    def enter(self, name: str, origin: "Optional[str]", requested_at: "Optional[int]" = None) -> "Optional[Frame]":
        """A module starts loading. `requested_at`: when its finder was asked (resolution is its
        own time, if that came after the last event). Returns the frame to pass to exit()."""
        t = now()
        if not self.active or _get_ident() != self.thread:
            return None
        last = self._last
        start = requested_at if requested_at is not None and requested_at > last else t
        stack = self._stack
        if stack:
            parent = stack[-1][0]
            if start > last:
                parent.self_ns += start - last
        else:
            parent = self.root
        children = parent.children
        if children is None:
            children = parent.children = {}
        node = children.get(name)
        if node is None:
            # Node(name, origin), without the cost of calling __init__
            node = children[name] = _new_node(Node)
            node.name = name
            node.origin = origin
            node.self_ns = node.inclusive_ns = node.loads = node.failed = 0
            node.children = None
        frame = [node, start, False]
        stack.append(frame)
        self.modules += 1
        if t > start:
            # resolution (finder asked -> loader called) is the new module's own time
            node.self_ns += t - start
        end = now()
        self.overhead_ns += end - t
        self._last = end
        return frame

    def exit(self, frame: "Optional[Frame]", failed: bool = False) -> None:
        t = now()
        if frame is None:
            return
        frame[2] = failed
        stack = self._stack
        if stack and stack[-1] is frame:
            # the usual case: the load on top of the stack ends
            node = frame[0]
            segment = t - self._last
            if segment > 0:
                node.self_ns += segment
            node.inclusive_ns += t - frame[1]
            node.loads += 1
            if failed:
                node.failed += 1
            stack.pop()
            if not stack:
                self.load_ns += t - frame[1]
            self.last_exit = t
            end = now()
            self.overhead_ns += end - t
            self._last = end
            return
        self._pop(t, frame)

    def exclude(self, started: int) -> None:
        """Time since `started` was the SDK's (a search that importlib repeats): overhead."""
        if not self.active:
            return
        end = now()
        spent = end - started
        self.overhead_ns += spent
        if self._last >= started:
            self._last = end
        else:
            self._last += spent

    def close(self) -> None:
        """Stops recording (the first invocation starts): loads still open end now; later loads
        (imports inside the handler) are not part of init and are not recorded."""
        if not self.active:
            return
        t = now()
        while self._stack:
            self._pop(t, self._stack[-1])
        self.active = False

    def _pop(self, t: int, frame: "Frame") -> None:
        stack = self._stack
        # by identity: frames are lists, and two can be equal
        at = len(stack) - 1
        while at >= 0 and stack[at] is not frame:
            at -= 1
        if at < 0:
            return
        # Frames above `frame` never reported their end (a loader that raised between
        # create_module and exec_module): they end now.
        for i in range(len(stack) - 1, at - 1, -1):
            node, start, failed = stack[i]
            if i == len(stack) - 1:
                self._add_self(node, t)
            node.inclusive_ns += t - start
            node.loads += 1
            if failed:
                node.failed += 1
            if i == 0:
                self.load_ns += t - start
        del stack[at:]
        self.last_exit = t
        self._settle(t)

    def _add_self(self, node: "Node", t: int) -> None:
        segment = t - self._last
        if segment > 0:
            node.self_ns += segment

    def _settle(self, t: int) -> None:
        end = now()
        self.overhead_ns += end - t
        self._last = end
