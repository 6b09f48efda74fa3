#!/usr/bin/env python3
"""Builds the Python SDK's wheel and Lambda layer zip with the standard library only (no pip,
setuptools or network): `python3 build.py [OUT_DIR]` (default dist/).

- dist/coldstart_analyzer-<version>-py3-none-any.whl: a pure-Python wheel (PEP 427): the package,
  and a *.dist-info folder with METADATA, WHEEL, top_level.txt and RECORD (sha256 of every file).
  Install it with `pip install dist/coldstart_analyzer-*.whl` (no index needed), or into a
  deployment package with `pip install -t package/ dist/...whl`.
- dist/coldstart-analyzer-layer-<version>.zip: the same files under `python/`, the folder Lambda's
  Python runtimes put on sys.path for a layer (/opt/python), with the modules' bytecode
  (`__pycache__/*.cpython-3NN.pyc`) for every CPython 3.9+ found: this interpreter, `python3.9` to
  `python3.14` on the PATH, or the interpreters named in COLDSTART_LAYER_PYTHONS (paths separated
  by ":"). A layer is read-only in Lambda: without them each cold start compiles the SDK's
  modules from source (8-20 ms before the function's own code, BENCHMARKS.md "Python SDK"), since
  Python cannot write the bytecode it made. The .pyc files are checked-hash (PEP 552): Python
  checks them against the source's hash, not its time stamp, which a zip does not keep.
  The wheel has none: pip compiles at install (`pip install -t` too).

The output is reproducible: fixed timestamps, sorted entries, hash-based bytecode.
"""

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "coldstart_analyzer"
NAME = "coldstart-analyzer"
STAMP = (2020, 1, 1, 0, 0, 0)


def version():
    with open(os.path.join(HERE, PACKAGE, "_constants.py")) as f:
        return re.search(r'^SDK_VERSION = "([^"]+)"', f.read(), re.M).group(1)


def package_files():
    out = []
    for folder, dirs, files in os.walk(os.path.join(HERE, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py") or name == "py.typed":
                path = os.path.join(folder, name)
                out.append((os.path.relpath(path, HERE).replace(os.sep, "/"), open(path, "rb").read()))
    # the rule table the server applies, for `python -m coldstart_analyzer profile`
    with open(os.path.join(os.path.dirname(HERE), "rules", "recommendations.json"), "rb") as f:
        out.append((PACKAGE + "/recommendations.json", f.read()))
    return out


# Run by each interpreter: compiles the .py files under argv[1] into their __pycache__ folders.
_COMPILE = """
import os, py_compile, sys
if sys.implementation.name != "cpython" or sys.version_info < (3, 9):
    sys.exit(3)
for folder, _, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith(".py"):
            path = os.path.join(folder, name)
            py_compile.compile(path, dfile=os.path.relpath(path, sys.argv[1]), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
print(sys.implementation.cache_tag)
"""


def interpreters():
    """CPython interpreters to compile the layer's bytecode with: COLDSTART_LAYER_PYTHONS, else this
    one and python3.9 ... python3.14 on the PATH; one per cache tag (cpython-311, ...)."""
    named = os.environ.get("COLDSTART_LAYER_PYTHONS")
    if named:
        return [p for p in named.split(":") if p]
    found = [sys.executable] + [shutil.which("python3.%d" % minor) for minor in range(9, 15)]
    return [p for p in found if p]


def bytecode(entries):
    """The .pyc entries (`coldstart_analyzer/__pycache__/<module>.<tag>.pyc`) of the .py entries, for
    every interpreter of interpreters() that runs; tags already made are skipped."""
    out, tags = [], set()
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in entries:
            if name.endswith(".py"):
                os.makedirs(os.path.join(tmp, os.path.dirname(name)), exist_ok=True)
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(data)
        for python in interpreters():
            try:
                proc = subprocess.run([python, "-c", _COMPILE, tmp], capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.SubprocessError):
                continue
            tag = proc.stdout.strip()
            if proc.returncode != 0 or not tag.startswith("cpython-") or tag in tags:
                continue
            tags.add(tag)
            for folder, _, files in os.walk(tmp):
                for file in files:
                    if file.endswith("." + tag + ".pyc"):
                        path = os.path.join(folder, file)
                        with open(path, "rb") as f:
                            out.append((os.path.relpath(path, tmp).replace(os.sep, "/"), f.read()))
    return sorted(out), sorted(tags)


def metadata(v):
    with open(os.path.join(HERE, "README.md")) as f:
        readme = f.read()
    return (
        "Metadata-Version: 2.1\n"
        "Name: %s\n"
        "Version: %s\n"
        "Summary: Why is this AWS Lambda function's cold start slow? Import timing per distribution, sent to coldstartd.\n"
        "License: MIT\n"
        "Requires-Python: >=3.9\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "Description-Content-Type: text/markdown\n"
        "\n%s" % (NAME, v, readme)
    ).encode("utf-8")


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def build(out_dir):
    v = version()
    os.makedirs(out_dir, exist_ok=True)
    info = "%s-%s.dist-info" % (PACKAGE, v)
    entries = package_files()
    entries.append((info + "/METADATA", metadata(v)))
    entries.append((info + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: coldstart-analyzer build.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    entries.append((info + "/top_level.txt", (PACKAGE + "\n").encode()))
    record = io.StringIO()
    for name, data in entries:
        record.write("%s,%s,%d\n" % (name, _digest(data), len(data)))
    record.write("%s/RECORD,,\n" % info)
    entries.append((info + "/RECORD", record.getvalue().encode()))
    wheel = os.path.join(out_dir, "%s-%s-py3-none-any.whl" % (PACKAGE, v))
    _write_zip(wheel, entries)
    layer = os.path.join(out_dir, "%s-layer-%s.zip" % (NAME, v))
    compiled, tags = bytecode(entries)
    _write_zip(layer, [("python/" + name, data) for name, data in entries + compiled])
    if not tags:
        print("build.py: no CPython 3.9+ compiled the layer's bytecode: it will be compiled at every cold start", file=sys.stderr)
    return wheel, layer


if __name__ == "__main__":
    for path in build(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "dist")):
        print(path)
