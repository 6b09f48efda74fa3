#!/usr/bin/env bash
# The Python SDK's suite: unit tests, fixtures in fresh python3 processes under a Lambda runtime
# emulator (the ground-truth accuracy test among them), and, when coldstartd is built and a
# PostgreSQL URL is given (CSA_TEST_DATABASE_URL, as scripts/test.sh sets it), end to end through
# the real server. PYTHON defaults to the distribution's interpreter, whose pytest deps.sh installs
# (python3-pytest): a python3 earlier on the PATH (pyenv, a venv) may not have it.
set -uo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import pytest' 2>/dev/null || { echo "sdk-python: $PYTHON has no pytest (apt-get install python3-pytest)" >&2; exit 1; }
"$PYTHON" -m pytest -q -p no:cacheprovider tests "$@"
status=$?
# exit status 5 is "no tests collected": a suite that ran nothing has not passed
if [ $status -eq 5 ]; then echo "sdk-python: no tests were collected" >&2; exit 1; fi
exit $status
