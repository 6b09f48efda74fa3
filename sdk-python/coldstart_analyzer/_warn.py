"""One line on stderr per kind of problem, never twice, never with the API key."""

import sys

_seen = set()


def warn_once(kind: str, message: str) -> None:
    if kind in _seen:
        return
    _seen.add(kind)
    try:
        sys.stderr.write("[coldstart] %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass
