"""The deployment identity a record carries: Lambda's `function_version` and `code_id`, a
fingerprint of the code that ran init (the Node.js SDK's sdk/src/invoke/fingerprint.ts, for
Python).

code_id = the first 128 bits (32 hex characters) of a SHA-256 over, in sorted order:
  * `name@version` of every distribution in the package tree (from its metadata);
  * the content of every file of the function's own that init loaded (the modules attributed to
    `./...` keys: their exact files, `.py`, `.pyc` or C extension);
  * the content of the handler's module file, so that a handler loaded before the SDK (analyze()
    in code) and code loaded lazily after init still count;
  * the content of the task root's requirements.txt and pyproject.toml when present.
Nothing depends on the machine, the clock or the timings: every environment of one deployment
computes the same id. It cannot see a dependency edited in place without a new version.

Computed once per process after the first response (when the cold-start record is built; the early
copy goes without it, as in Node.js), then cached for warm records.
"""

from __future__ import annotations  # annotations are never evaluated: no typing import at run time

import hashlib
import os
import sys

FUNCTION_VERSION_MAX = 64
MAX_ENTRIES = 20000
MAX_OWN_FILE_BYTES = 16 * 1024 * 1024
MANIFESTS = ("requirements.txt", "pyproject.toml")

_cached: Optional[str] = None


def _token(text: Any) -> Optional[str]:
    """A value the backend takes as an identity: 1-64 printable ASCII characters, no spaces."""
    if not isinstance(text, str) or not text:
        return None
    text = text[:FUNCTION_VERSION_MAX]
    return text if all("!" <= ch <= "~" for ch in text) else None


def function_version(context: Any, env: Any = None) -> Optional[str]:
    """Lambda's version of the function: the environment's, else the context's."""
    env = os.environ if env is None else env
    return _token(env.get("AWS_LAMBDA_FUNCTION_VERSION")) or _token(getattr(context, "function_version", None))


def cached_code_id() -> Optional[str]:
    return _cached


def reset() -> None:
    global _cached
    _cached = None


def _digest(path: str, limit: int) -> Optional[str]:
    try:
        size = os.stat(path).st_size
        if size > limit:
            return "size %d" % size
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except (OSError, ValueError):
        return None


def code_id(runtime: Any) -> Optional[str]:
    """The process's code_id (computed on first call, then cached); None if it cannot be."""
    global _cached
    if _cached is None:
        try:
            _cached = compute(runtime)
        except Exception:
            _cached = None
    return _cached


def compute(runtime: Any) -> str:
    task_root = os.path.abspath(runtime.task_root).rstrip(os.sep)
    tree = runtime.package_tree()
    attribute = runtime.attribute
    entries = set()

    stack = list(tree.children.values())
    while stack and len(entries) < MAX_ENTRIES:
        node = stack.pop()
        if node.version is not None:
            entries.add("package %s@%s" % (node.key, node.version))
        stack.extend(node.children.values())

    own = set()
    modules = list((runtime.recorder.root.children or {}).values())
    while modules and len(own) < MAX_ENTRIES:
        module = modules.pop()
        origin = module.origin
        if isinstance(origin, str) and os.path.isabs(origin) and attribute(module.name, origin)[0].startswith("./"):
            own.add(origin)
        modules.extend((module.children or {}).values())

    def relative(path: str) -> str:
        path = os.path.abspath(path)
        return "." + path[len(task_root) :].replace(os.sep, "/") if path.startswith(task_root + os.sep) else path

    for path in own:
        digest = _digest(path, MAX_OWN_FILE_BYTES)
        if digest is not None:
            entries.add("file %s %s" % (relative(path), digest))
    handler_file = getattr(sys.modules.get(runtime.handler_module or ""), "__file__", None)
    if isinstance(handler_file, str):
        digest = _digest(handler_file, MAX_OWN_FILE_BYTES)
        if digest is not None:
            entries.add("handler %s %s" % (relative(handler_file), digest))
    for name in MANIFESTS:
        digest = _digest(os.path.join(task_root, name), MAX_OWN_FILE_BYTES)
        if digest is not None:
            entries.add("manifest %s %s" % (name, digest))

    h = hashlib.sha256(b"coldstart code_id 1\n")
    for entry in sorted(entries):
        h.update(entry.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()[:32]
