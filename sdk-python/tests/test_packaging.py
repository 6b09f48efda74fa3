"""The wheel and the layer zip built by build.py: installable without an index, importable, with
metadata that importlib.metadata reads, and the layer under python/."""

import os
import subprocess
import sys
import zipfile

import pytest

from helpers import SDK


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, os.path.join(SDK, "build.py"), str(out)], capture_output=True, text=True, check=True)
    wheel, layer = proc.stdout.split()
    return wheel, layer


def test_wheel_installs_and_reports_its_version(artefacts, tmp_path):
    wheel, _ = artefacts
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "coldstart_analyzer/__init__.py" in names and "coldstart_analyzer/handler.py" in names
        record = zf.read("coldstart_analyzer-0.1.0.dist-info/RECORD").decode()
        assert all(line.split(",")[0] in names for line in record.splitlines())
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--no-deps", "--quiet", "--target", str(target), wheel], check=True)
    check = (
        "import importlib.metadata as m, coldstart_analyzer as c;"
        "print(m.version('coldstart-analyzer'), c.__version__, c.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", check], env={"PYTHONPATH": str(target), "PATH": os.environ["PATH"]}, capture_output=True, text=True, check=True, cwd=str(tmp_path))
    version, own, path = out.stdout.split()
    assert version == own == "0.1.0"
    assert path.startswith(str(target))
    # the command line and the rule table it ships with
    assert "coldstart_analyzer/recommendations.json" in names
    rules = subprocess.run(
        [sys.executable, "-c", "from coldstart_analyzer import _cli, _rules; print(_cli.default_rules_file(), len(_rules.load_rules(_cli.default_rules_file()).rules))"],
        env={"PYTHONPATH": str(target), "PATH": os.environ["PATH"]}, capture_output=True, text=True, check=True, cwd=str(tmp_path),
    ).stdout.split()
    assert rules[0].startswith(str(target)) and int(rules[1]) >= 20


def test_layer_zip_has_the_python_prefix_and_works(artefacts, tmp_path):
    _, layer = artefacts
    with zipfile.ZipFile(layer) as zf:
        assert all(n.startswith("python/") for n in zf.namelist())
        zf.extractall(tmp_path / "opt")
    out = subprocess.run(
        [sys.executable, "-c", "import coldstart_analyzer.handler"],
        env={"PYTHONPATH": str(tmp_path / "opt" / "python"), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
    )
    # no COLDSTART_HANDLER: the redirect fails init the way Lambda reports a missing handler
    assert "Runtime.HandlerNotFound" in out.stderr


def test_layer_ships_bytecode_so_a_cold_start_compiles_nothing(artefacts, tmp_path):
    # Lambda's /opt is read-only: without .pyc in the layer every cold start compiles the SDK.
    _, layer = artefacts
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(layer) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "opt")
    sources = [n for n in names if n.endswith(".py")]
    for name in sources:
        folder, file = name.rsplit("/", 1)
        assert "%s/__pycache__/%s.%s.pyc" % (folder, file[:-3], tag) in names, name
    before = sorted(p.name for p in (tmp_path / "opt" / "python" / "coldstart_analyzer" / "__pycache__").iterdir())
    out = subprocess.run(
        [sys.executable, "-v", "-c", "import coldstart_analyzer._redirect, coldstart_analyzer._runtime"],
        env={"PYTHONPATH": str(tmp_path / "opt" / "python"), "PATH": os.environ["PATH"]},
        capture_output=True, text=True, cwd=str(tmp_path), check=True,
    )
    # -v names where each module's code came from: the shipped bytecode, never a compile of the source
    sdk_lines = [line for line in out.stderr.splitlines() if "coldstart_analyzer" in line and line.startswith("# code object from")]
    assert len(sdk_lines) >= 4, out.stderr[-2000:]
    assert all(".%s.pyc" % tag in line for line in sdk_lines), sdk_lines
    assert sorted(p.name for p in (tmp_path / "opt" / "python" / "coldstart_analyzer" / "__pycache__").iterdir()) == before


def test_build_is_reproducible(artefacts, tmp_path):
    wheel, layer = artefacts
    proc = subprocess.run([sys.executable, os.path.join(SDK, "build.py"), str(tmp_path)], capture_output=True, text=True, check=True)
    again_wheel, again_layer = proc.stdout.split()
    assert open(wheel, "rb").read() == open(again_wheel, "rb").read()
    # the layer too: hash-based bytecode carries no time stamp
    assert open(layer, "rb").read() == open(again_layer, "rb").read()
