"""Builds the ground-truth task root: packages whose top level busy-waits known times, installed
the way `pip install -t` installs them (real *.dist-info folders: METADATA, RECORD, some with
top_level.txt, some without), next to the function's own files.

Each module measures its own busy-wait with perf_counter_ns and adds it to
builtins.__coldstart_truth__[distribution]; the handler returns that dict, so a test compares the
SDK's self time per distribution with what really ran, in the same process.

What is in it (distribution: modules, busy ms):
- ./app (the handler module, own code): 80; ./lib/util: 50
- alpha-dist 1.2.3: alpha (120) and alpha.sub (40), alpha imports beta
- Beta-Pkg 0.4 (no top_level.txt: ownership from RECORD): beta (80)
- Fancy-Name 2.0 (import name differs from the distribution's): fancy.py (60)
- nsp-one 1.0 and nsp-two 1.0: the namespace package nsp (no __init__), nsp.one (60), nsp.two (50)
- circ 0.1: circ_a (60) imports circ_b (40) which imports circ_a (circular)
- flaky-dist 1.0: flaky (50, twice) raises on its first import; app catches it and imports it again
- cext-dist 3.1 (optional, needs gcc and Python.h): a real C extension whose PyInit busy-waits 60
- pyc-only 0.9: a sourceless package (only __init__.pyc): 50
- lazy-dist 1.0: lazy_mod (10), imported inside the handler, after init: must not be counted
- the standard library: app imports fractions (not loaded by the interpreter itself)
"""

import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig

BUSY = '''import builtins as _b, time as _t
def _busy(_ms, _dist):
    _s = _t.perf_counter_ns(); _e = _s + int(_ms * 1e6)
    while _t.perf_counter_ns() < _e:
        pass
    _d = _b.__dict__.setdefault("__coldstart_truth__", {})
    _d[_dist] = _d.get(_dist, 0) + (_t.perf_counter_ns() - _s)
'''

APP = BUSY + '''import fractions
import lib.util
import alpha
import fancy
import nsp.one
import nsp.two
import circ_a
try:
    import flaky
except RuntimeError:
    import flaky
import pyconly
try:
    import cext_mod
    _b.__dict__.setdefault("__coldstart_truth__", {})["cext-dist"] = cext_mod.busy_ns
except ImportError:
    pass
_busy(80, "./app")


def handler(event, context):
    import lazy_mod
    truth = dict(_b.__dict__.get("__coldstart_truth__", {}))
    truth.pop("lazy-dist", None)
    return {"truth_ns": truth, "n": event.get("n")}
'''

CEXT = r'''
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>
static long long now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "cext_mod", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_cext_mod(void) {
    long long start = now_ns();
    while (now_ns() - start < 60000000LL) {}
    PyObject *m = PyModule_Create(&def);
    if (m) PyModule_AddObject(m, "busy_ns", PyLong_FromLongLong(now_ns() - start));
    return m;
}
'''


def module(ms, dist, imports=""):
    return BUSY + imports + "_busy(%s, %r)\n" % (ms, dist)


def _write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _dist_info(root, name, version, files, top_level=None):
    folder = "%s-%s.dist-info" % (name.replace("-", "_"), version)
    _write(root, folder + "/METADATA", "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: fixture\n" % (name, version))
    if top_level is not None:
        _write(root, folder + "/top_level.txt", "".join(t + "\n" for t in top_level))
    record = [f + ",," for f in files] + [folder + "/METADATA,,", folder + "/RECORD,,"]
    _write(root, folder + "/RECORD", "\n".join(record) + "\n")


def build(root, with_cext=True):
    """Writes the task root into `root`; returns whether the C extension could be built."""
    _write(root, "app.py", APP)
    _write(root, "lib/__init__.py", "")
    _write(root, "lib/util.py", module(50, "./lib/util"))
    _write(root, "alpha/__init__.py", module(120, "alpha-dist", "import alpha.sub\nimport beta\n"))
    _write(root, "alpha/sub.py", module(40, "alpha-dist"))
    _dist_info(root, "alpha-dist", "1.2.3", ["alpha/__init__.py", "alpha/sub.py"], ["alpha"])
    _write(root, "beta/__init__.py", module(80, "Beta-Pkg"))
    _dist_info(root, "Beta-Pkg", "0.4", ["beta/__init__.py"])
    _write(root, "fancy.py", module(60, "Fancy-Name"))
    _dist_info(root, "Fancy-Name", "2.0", ["fancy.py"], ["fancy"])
    _write(root, "nsp/one/__init__.py", module(60, "nsp-one"))
    _dist_info(root, "nsp-one", "1.0", ["nsp/one/__init__.py"], ["nsp"])
    _write(root, "nsp/two/__init__.py", module(50, "nsp-two"))
    _dist_info(root, "nsp-two", "1.0", ["nsp/two/__init__.py"], ["nsp"])
    _write(root, "circ_a.py", BUSY + "import circ_b\n_busy(60, 'circ')\n")
    _write(root, "circ_b.py", BUSY + "import circ_a\n_busy(40, 'circ')\n")
    _dist_info(root, "circ", "0.1", ["circ_a.py", "circ_b.py"], ["circ_a", "circ_b"])
    _write(
        root,
        "flaky.py",
        BUSY + "_busy(50, 'flaky-dist')\nif not _b.__dict__.get('__flaky_tried__'):\n"
        "    _b.__flaky_tried__ = True\n    raise RuntimeError('first import fails')\n",
    )
    _dist_info(root, "flaky-dist", "1.0", ["flaky.py"], ["flaky"])
    source = os.path.join(root, "pyconly", "__init__.py")
    _write(root, "pyconly/__init__.py", module(50, "pyc-only"))
    py_compile.compile(source, cfile=source + "c", doraise=True)
    os.remove(source)
    _dist_info(root, "pyc-only", "0.9", ["pyconly/__init__.pyc"], ["pyconly"])
    _write(root, "lazy_mod.py", module(10, "lazy-dist"))
    _dist_info(root, "lazy-dist", "1.0", ["lazy_mod.py"], ["lazy_mod"])
    built = False
    if with_cext and shutil.which("gcc"):
        include = sysconfig.get_paths()["include"]
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        if os.path.exists(os.path.join(include, "Python.h")):
            c_file = os.path.join(root, "..", "cext_mod.c")
            with open(c_file, "w") as f:
                f.write(CEXT)
            target = os.path.join(root, "cext_mod" + suffix)
            result = subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-I" + include, c_file, "-o", target], capture_output=True)
            if result.returncode == 0:
                _dist_info(root, "cext-dist", "3.1", ["cext_mod" + suffix], ["cext_mod"])
                built = True
    # compiled once, as a deployment package built with `pip install -t` and compileall would be:
    # loading then reads a .pyc instead of compiling, so the waits dominate each module's time
    import compileall

    compileall.compile_dir(root, quiet=1)
    return built


if __name__ == "__main__":
    print(build(sys.argv[1]))
