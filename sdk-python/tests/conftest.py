import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import coldstart_analyzer  # noqa: E402

# In the test process itself the SDK's hooks would record every import pytest makes: taken off
# (the unit tests install their own ImportHooks; fixtures run in fresh processes).
if coldstart_analyzer._state is not None:
    coldstart_analyzer._state.hooks.uninstall()
    coldstart_analyzer._state.recorder.close()
