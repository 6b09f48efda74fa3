"""Which distribution, standard library module or own file a loaded module belongs to.

Run after init (when a record is built), never during it: it reads installed metadata through
importlib.metadata, which costs milliseconds.

- A module whose file lies in a sys.path entry that holds a distribution owning it belongs to that
  distribution, named as its metadata names it (`yaml` -> `PyYAML`), with its version. Ownership
  comes from top_level.txt, else from the distribution's file list (RECORD, installed-files.txt);
  when several distributions share a top-level name (a namespace package such as `google`, with
  `google.protobuf` from protobuf and `google.api` from googleapis-common-protos), from the file
  lists. The sys.path entry of the module is the one the metadata is looked for in: a boto3 in the
  task root shadows the runtime's, and so does its version. Zipped entries work through
  importlib.metadata's zip support; sourceless installs (.pyc only) match their RECORD lines.
- The standard library (built-in, frozen, under the interpreter's lib folder, lib-dynload's C
  extensions included) is `stdlib:<top-level name>` (`stdlib:json`).
- Any other file under the task root is the function's own: `./path/relative/to/task/root`,
  without the extension, `/__init__` dropped (`./app/handlers/payment`, `./app`).
- Anything else (a module on sys.path without metadata, e.g. in a layer) is its top-level name.
"""

from __future__ import annotations  # annotations are never evaluated: no typing import at run time

import os
import sys

from ._constants import STDLIB_PREFIX

# an attribution: (key, version)

_SUFFIXES = (".py", ".pyc", ".pyw")


def _stdlib_dirs() -> Tuple[str, ...]:
    dirs = set()
    base = os.path.dirname(os.path.abspath(os.__file__))
    dirs.add(base)
    try:
        import sysconfig

        for name in ("stdlib", "platstdlib"):
            path = sysconfig.get_paths().get(name)
            if path:
                dirs.add(os.path.abspath(path))
    except Exception:
        pass
    return tuple(d.rstrip(os.sep) + os.sep for d in dirs)


def _module_file_key(relative: str) -> str:
    """`app/handlers/payment.py` -> `./app/handlers/payment`; `app/__init__.py` -> `./app`."""
    relative = relative.replace(os.sep, "/")
    stem = relative
    dot = stem.rfind(".")
    if dot > stem.rfind("/"):
        stem = stem[:dot]
        # C extensions: payment.cpython-311-x86_64-linux-gnu -> payment
        second = stem.find(".", stem.rfind("/") + 1)
        if second >= 0:
            stem = stem[:second]
    if stem.endswith("/__init__"):
        stem = stem[: -len("/__init__")]
    return "./" + stem


class _EntryIndex:
    """The distributions installed in one sys.path entry, indexed by top-level import name."""

    def __init__(self, entry: str) -> None:
        self.by_top: Dict[str, List[object]] = {}
        self.files: Dict[int, Optional[set]] = {}
        try:
            from importlib import metadata

            dists = list(metadata.distributions(path=[entry]))
        except Exception:
            dists = []
        for dist in dists:
            tops = None
            try:
                text = dist.read_text("top_level.txt")
                if text:
                    tops = {line.strip() for line in text.splitlines() if line.strip()}
            except Exception:
                tops = None
            if not tops:
                tops = set()
                for path in self._files(dist) or ():
                    first = path.split("/", 1)[0]
                    if first.endswith((".dist-info", ".egg-info", ".data")) or first in ("..", "__pycache__"):
                        continue
                    name = first.split(".", 1)[0] if "/" not in path else first
                    tops.add(name)
            for top in tops:
                self.by_top.setdefault(top.replace("/", "."), []).append(dist)

    def _files(self, dist: object) -> Optional[set]:
        key = id(dist)
        if key not in self.files:
            found = None
            try:
                files = dist.files  # type: ignore[attr-defined]
                if files is not None:
                    found = set()
                    for f in files:
                        text = str(f).replace("\\", "/")
                        if text.startswith("../"):
                            # egg-info's installed-files.txt is relative to the egg-info folder
                            text = text[3:]
                        found.add(text)
            except Exception:
                found = None
            self.files[key] = found
        return self.files[key]

    def owner(self, module: str, relative: str) -> Optional[object]:
        parts = module.split(".")
        candidates: List[object] = []
        # the longest dotted prefix a distribution declares wins (namespace packages declare
        # `google.protobuf`-style names in some top_level.txt files)
        for n in range(len(parts), 0, -1):
            candidates = self.by_top.get(".".join(parts[:n]), [])
            if candidates:
                break
        if len(candidates) == 1:
            return candidates[0]
        relative = relative.replace(os.sep, "/")
        alternatives = {relative}
        if "/__pycache__/" in relative:
            # a/__pycache__/b.cpython-311.pyc is listed as a/b.py (or itself)
            head, _, tail = relative.rpartition("/__pycache__/")
            alternatives.add(head + "/" + tail.split(".", 1)[0] + ".py")
        for dist in candidates:
            files = self._files(dist)
            if files is not None and alternatives & files:
                return dist
        return candidates[0] if candidates else None


class Attributor:
    """Caches what it has read; create one per record-building pass (or keep it: metadata does not
    change while a function runs)."""

    def __init__(self, task_root: str, runtime_dir: Optional[str] = None) -> None:
        self.task_root = os.path.abspath(task_root).rstrip(os.sep) + os.sep
        self.stdlib = _stdlib_dirs()
        self._entries: Dict[str, _EntryIndex] = {}
        self._cache: Dict[Tuple[str, Optional[str]], Tuple[str, Optional[str]]] = {}
        self._path = None  # sys.path entries, longest first

    def _sys_path(self) -> List[str]:
        if self._path is None:
            entries = []
            for entry in sys.path:
                if isinstance(entry, str):
                    entries.append(os.path.abspath(entry or os.getcwd()).rstrip(os.sep))
            self._path = sorted(set(entries), key=len, reverse=True)
        return self._path

    def attribute(self, module: str, origin: Optional[str]) -> Tuple[str, Optional[str]]:
        cache_key = (module, origin)
        found = self._cache.get(cache_key)
        if found is None:
            found = self._cache[cache_key] = self._attribute(module, origin)
        return found

    def _attribute(self, module: str, origin: Optional[str]) -> Tuple[str, Optional[str]]:
        top = module.split(".", 1)[0]
        if origin is None or origin in ("built-in", "frozen") or not os.path.isabs(origin):
            if origin in ("built-in", "frozen") or top in sys.builtin_module_names:
                return STDLIB_PREFIX + top, None
            return top, None
        path = os.path.abspath(origin)
        if path.startswith(self.stdlib):
            rest = path[len(next(d for d in self.stdlib if path.startswith(d))) :]
            if "site-packages" not in rest and "dist-packages" not in rest:
                return STDLIB_PREFIX + top, None
        for entry in self._sys_path():
            if path.startswith(entry + os.sep):
                index = self._entries.get(entry)
                if index is None:
                    index = self._entries[entry] = _EntryIndex(entry)
                dist = index.owner(module, path[len(entry) + 1 :])
                if dist is not None:
                    try:
                        name = dist.metadata["Name"]  # type: ignore[attr-defined]
                        version = dist.version  # type: ignore[attr-defined]
                    except Exception:
                        name, version = None, None
                    if name:
                        return str(name), (str(version) if version else None)
                break
        if path.startswith(self.task_root):
            return _module_file_key(path[len(self.task_root) :]), None
        return top, None
