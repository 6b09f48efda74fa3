"""The import hooks: a meta path finder first on sys.meta_path, and a loader wrapper.

The finder asks the finders after it (the same ones importlib would ask, in the same order) and,
when one finds the module, wraps the spec's loader. The wrapper's create_module opens the load
(from the moment the finder was asked: path resolution is the module's own time, as a require()'s
resolution is in the Node.js SDK), and its exec_module closes it, whether the module's body
returns or raises. create_module covers a C extension's dlopen and init function and a built-in's
initialisation; exec_module covers reading, compiling (or unmarshalling the .pyc) and running the
body. So a module's time is what `python -X importtime` would give it, split into self and
inclusive by the recorder.

- Cached imports (sys.modules) never reach a finder: not counted, as in Node.js. A circular import
  finds the partly initialised module in sys.modules: nothing happens.
- A module that is not found: the finder's search is repeated by importlib (our finder returns
  None and importlib asks the next finders), so the first search is the SDK's overhead and the
  second, real one is the importer's own time.
- A failing import (its body raises) is timed and counted (`failed`); importlib removes it from
  sys.modules, so a retry loads it again: two loads, both real init time.
- Namespace packages (no code), loaders without exec_module (legacy load_module) and the Lambda
  runtime's own files are not wrapped: their time stays with the module that imported them.
- The loader of a module is restored on the module and its spec once it has loaded, so code that
  checks `type(module.__loader__)` (pkg_resources, importlib.resources) sees the real one.
- The SDK's own modules (coldstart_analyzer.*) are not recorded: their time is its overhead.
- Only the main thread's imports are recorded; after the hooks are removed (the first invocation
  starts) a wrapper still in some spec just delegates.
"""

import sys
from _thread import get_ident as _get_ident
from time import perf_counter_ns as now

from ._recorder import Frame, Recorder


class _TimedLoader:
    """Wraps a loader for one load of one module. Every other attribute is the real loader's."""

    # One slot, a list: [real loader, recorder, name, origin, finder asked at, open frame] (set
    # through object.__setattr__: __setattr__ goes to the real loader). The hooks run at every
    # import of init: this path is kept to a few lookups and calls, and no instance dict.
    __slots__ = ("_coldstart",)

    def __getattr__(self, name: str) -> "Any":
        return getattr(self._coldstart[0], name)

    def __setattr__(self, name: str, value: "Any") -> None:
        setattr(self._coldstart[0], name, value)

    def __repr__(self) -> str:
        return repr(self._coldstart[0])

    def create_module(self, spec: "Any") -> "Any":
        d = self._coldstart
        if d[5] is None:
            d[5] = d[1].enter(d[2], d[3], d[4])
        create = getattr(d[0], "create_module", None)
        if create is None:
            return None
        try:
            return create(spec)
        except BaseException:
            frame, d[5], d[4] = d[5], None, None
            if frame is not None:
                d[1].exit(frame, True)
            raise

    def exec_module(self, module: "Any") -> None:
        d = self._coldstart
        loader = d[0]
        if d[5] is None:
            d[5] = d[1].enter(d[2], d[3], d[4])
        failed = True
        try:
            loader.exec_module(module)
            failed = False
        finally:
            # a reload() through the same spec is timed from its start
            frame, d[5], d[4] = d[5], None, None
            if frame is not None:
                d[1].exit(frame, failed)
            # the real loader again, on the module and its spec
            try:
                if getattr(module, "__loader__", None) is self:
                    module.__loader__ = loader
                spec = getattr(module, "__spec__", None)
                if spec is not None and spec.loader is self:
                    spec.loader = loader
            except Exception:
                pass


def _timed(loader: "Any", recorder: "Recorder", name: str, origin: "Optional[str]", requested_at: int) -> "_TimedLoader":
    wrapper = _new(_TimedLoader)
    _set(wrapper, "_coldstart", [loader, recorder, name, origin, requested_at, None])
    return wrapper


_new = object.__new__
_set = object.__setattr__


class ImportHooks:
    """The finder. install() puts it first on sys.meta_path; uninstall() takes it off."""

    def __init__(self, recorder: "Recorder", exclude_prefixes: tuple = ()) -> None:
        self.recorder = recorder
        self.exclude_prefixes = exclude_prefixes  # e.g. the Lambda runtime's own folder
        self._busy = False
        self._thread = _get_ident()

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        try:
            while self in sys.meta_path:
                sys.meta_path.remove(self)
        except Exception:
            pass

    def invalidate_caches(self) -> None:
        pass

    def find_spec(self, fullname: str, path: "Any" = None, target: "Any" = None) -> "Any":
        started = now()
        recorder = self.recorder
        if self._busy or not recorder.active or _get_ident() != self._thread:
            return None
        if fullname.startswith("coldstart_analyzer"):
            return None  # the SDK's own modules (the handler redirect): its overhead, not the function's
        self._busy = True
        spec = None
        searched = False
        try:
            after = False
            for finder in sys.meta_path:
                if not after:
                    after = finder is self
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    break  # a legacy finder: let importlib carry on from here itself
                searched = True
                spec = find(fullname, path, target)
                if spec is not None:
                    break
            if not after:
                return None
            if spec is None:
                if searched:
                    recorder.exclude(started)  # importlib repeats this search: it is ours
                return None
            loader = spec.loader
            origin = spec.origin
            if (
                loader is None
                or not hasattr(loader, "exec_module")
                or (origin is None and spec.submodule_search_locations is not None)  # namespace package
                or (isinstance(origin, str) and self.exclude_prefixes and origin.startswith(self.exclude_prefixes))
            ):
                return spec
            spec.loader = _timed(loader, recorder, fullname, origin if isinstance(origin, str) else None, started)
            return spec
        finally:
            self._busy = False
