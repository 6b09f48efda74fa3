"""`python3 -m coldstart_analyzer profile <handler>`: see _cli.py and docs/sdk-python.md."""

import sys

import coldstart_analyzer as _package

# the package's import installed the hooks in this process too: a command has no init to time
if _package._state is not None:
    _package._state.hooks.uninstall()
    _package._state.recorder.close()

from coldstart_analyzer._cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
