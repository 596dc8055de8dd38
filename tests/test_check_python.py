"""pip/python drift, diagnosed on real interpreters: pyenv's Python 2.7 beside a
Python 3 venv, pip scripts naming another or a missing interpreter, and a pycaffe
compiled for the wrong Python. Each case has a healthy twin the rule must pass."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.fixtures.envs import check_env, pyenv_python, pyenv_root, pyenv_series, run_check

DRIFT = "interpreter-drift"
# What pip's own installer writes into bin/pip: the launcher under test reads only the
# shebang, exactly as the kernel does.
PIP_LAUNCHER = """\
# -*- coding: utf-8 -*-
import re
import sys
from pip._internal.cli.main import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def _script(path, first_lines: str) -> None:
    path.write_text(first_lines + PIP_LAUNCHER)
    path.chmod(0o755)


def test_pip_of_python27_ahead_of_the_venv(make_venv, tmp_path):
    venv = make_venv("3.9")
    py27 = pyenv_python("2.7")
    res = run_check(venv.python, check_env(tmp_path / "home", py27.parent, venv.bin), tmp_path)

    # Nothing misplaced yet: information, not a warning that would sit on every healthy host.
    [f] = res.findings(DRIFT)
    assert f["severity"] == "info"
    evidence = "\n".join(f["evidence"])
    prefix27 = str(py27.parent.parent)
    assert f"`pip` is {py27.parent / 'pip'}" in evidence
    assert f"installs into {prefix27} (Python 2.7" in evidence
    assert f"not into {venv.root} (Python 3.9" in evidence
    assert "`pip3`" not in evidence  # pip3 comes from the venv
    assert f"`{venv.python} -m pip install" in f["fix"]
    # The Python 2.7 was examined from inside, by the same introspection script.
    seen = res.facts["python"]["interpreters"]
    assert any(i["version"].startswith("2.7.") for i in seen.values())


def test_a_pip_that_already_misplaced_pycaffes_packages_is_a_warning(make_venv, tmp_path):
    venv = make_venv("3.9")
    other = make_venv("3.10", "numpy==2.2.6")  # a bare `pip install numpy` went here
    res = run_check(venv.python, check_env(tmp_path / "home", other.bin, venv.bin), tmp_path)

    [f] = res.findings(DRIFT)
    assert f["severity"] == "warning"
    assert [e.split(" ", 1)[0] for e in f["evidence"]] == ["`pip`", "`pip3`"]
    assert f"`pip` is {other.bin / 'pip'}" in f["evidence"][0]
    for line in f["evidence"]:
        assert line.endswith(f"; pycaffe's numpy is there but not in {venv.root}")


def test_venv_ahead_of_python27(make_venv, tmp_path):
    venv = make_venv("3.9")
    py27 = pyenv_python("2.7")
    res = run_check(venv.python, check_env(tmp_path / "home", venv.bin, py27.parent), tmp_path)

    assert res.findings(DRIFT) == []
    commands = {c["name"]: c for c in res.facts["python"]["commands"] if c["first_on_path"]}
    assert commands["pip"]["runs"] == str(venv.python)
    # pip2 still feeds 2.7, beside it: normal, not drift for a Python 3 target.
    assert commands["pip2"]["runs"].startswith(str(py27.parent))


def test_pip_scripts_naming_another_or_a_missing_python(make_venv, tmp_path):
    venv = make_venv("3.9")
    other = pyenv_python("3.10")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    gone = tmp_path / "removed-venv" / "bin" / "python3"
    _script(scripts / "pip", f"#!{gone}\n")
    _script(scripts / "pip3", f"#!{other}\n")
    res = run_check(venv.python, check_env(tmp_path / "home", scripts, venv.bin), tmp_path)

    by_detail = {f["title"].split(": ", 1)[1]: f for f in res.findings(DRIFT)}
    broken = by_detail["scripts name an interpreter that is gone"]
    assert broken["severity"] == "warning"
    assert any(
        e.startswith(f"{scripts / 'pip'} (first `pip` on PATH)") and f"{gone} does not exist" in e
        for e in broken["evidence"]
    )
    foreign = by_detail["pip on PATH feeds another Python"]
    [line] = foreign["evidence"]
    assert f"`pip3` is {scripts / 'pip3'} (shebang `#!{other}`)" in line
    assert f"installs into {other.parent.parent} (Python 3.10" in line


def test_pip_scripts_naming_the_venv(make_venv, tmp_path):
    venv = make_venv("3.9")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    _script(scripts / "pip", f"#!{venv.python}\n")
    # pip's launcher for interpreter paths too long for a shebang line
    _script(scripts / "pip3", f"#!/bin/sh\n'''exec' \"{venv.python}\" \"$0\" \"$@\"\n' '''\n")
    res = run_check(venv.python, check_env(tmp_path / "home", scripts, venv.bin), tmp_path)

    assert res.findings(DRIFT) == []
    commands = {c["path"]: c for c in res.facts["python"]["commands"]}
    assert commands[str(scripts / "pip3")]["runs"] == str(venv.python)
    assert commands[str(scripts / "pip3")]["via"] == "exec line"


@pytest.mark.parametrize("series", pyenv_series() or ["2.7"])
def test_every_pyenv_python_can_be_examined(series, tmp_path):
    python = pyenv_python(series)
    res = run_check(python, check_env(tmp_path / "home", python.parent), tmp_path)

    assert "probe-failed" not in res.ids(), res.findings("probe-failed")
    target = res.facts["python"]["target"]
    assert target["version"].startswith(series + ".")
    assert target["error"] is None
    attempt = res.facts["caffe"]["import_attempt"]
    assert attempt["ok"] is False and "caffe" in attempt["error"]


@pytest.fixture(scope="module")
def pb_venv(make_venv):
    return make_venv("3.9", "protobuf==3.20.3")


def test_pycaffe_compiled_for_python27(pb_venv, build_pycaffe, gencode, tmp_path):
    tree = build_pycaffe(tmp_path / "caffe27", pyenv_python("2.7"), gencode("builder"))
    env = check_env(tmp_path / "home", pb_venv.bin, PYTHONPATH=str(tree.python_dir))
    res = run_check(pb_venv.python, env, tmp_path)

    [f] = res.findings(DRIFT)
    assert f["severity"] == "error"
    assert res.returncode == 1
    assert f["title"].endswith("_caffe.so is built for Python 2")
    evidence = "\n".join(f["evidence"])
    assert f"{tree.extension} was built for Python 2 (exports init_caffe)" in evidence
    assert "undefined symbol: Py_InitModule4" in evidence  # the import's own complaint
    assert f"caffedoc build --python {pb_venv.python}" in f["fix"]


def test_pycaffe_compiled_for_the_venv(pb_venv, build_pycaffe, gencode, tmp_path):
    tree = build_pycaffe(tmp_path / "caffe39", pyenv_python("3.9"), gencode("builder"))
    env = check_env(tmp_path / "home", pb_venv.bin, PYTHONPATH=str(tree.python_dir))
    res = run_check(pb_venv.python, env, tmp_path)

    assert res.findings(DRIFT) == []
    assert res.facts["caffe"]["import_attempt"]["ok"] is True
    assert res.returncode == 0


@pytest.fixture(scope="module")
def numpy2_venv(make_venv):
    return make_venv("3.9", "protobuf==3.20.3", "numpy>=2,<2.1")


def test_pycaffe_compiled_against_numpy1_under_numpy2(
    numpy2_venv, make_venv, build_pycaffe, gencode, tmp_path
):
    numpy1 = make_venv("3.9", "numpy<2")
    tree = build_pycaffe(
        tmp_path / "trees" / "caffe", numpy1.python, gencode("builder"), numpy1.python
    )
    env = check_env(tmp_path / "home", numpy2_venv.bin, PYTHONPATH=str(tree.python_dir))
    res = run_check(numpy2_venv.python, env, tmp_path)

    [f] = res.findings("numpy-abi")
    assert f["severity"] == "error"
    evidence = "\n".join(f["evidence"])
    assert f"{tree.extension} was compiled against numpy 1.x headers" in evidence
    assert f"{numpy2_venv.python} has numpy 2.0." in evidence
    assert "numpy.core.multiarray failed to import" in evidence  # the import's own words
    assert f"`{numpy2_venv.python} -m pip install 'numpy<2'`" in f["fix"]


def test_pycaffe_compiled_against_numpy2_under_numpy2(
    numpy2_venv, build_pycaffe, gencode, tmp_path
):
    tree = build_pycaffe(
        tmp_path / "trees" / "caffe", numpy2_venv.python, gencode("builder"), numpy2_venv.python
    )
    env = check_env(tmp_path / "home", numpy2_venv.bin, PYTHONPATH=str(tree.python_dir))
    res = run_check(numpy2_venv.python, env, tmp_path)

    assert "numpy-abi" not in res.ids()
    assert res.facts["caffe"]["import_attempt"]["ok"] is True
    assert res.facts["caffe"]["installs"][0]["extension"]["numpy_headers"] == "2.x"


def test_pyenv_shims_are_followed_as_pyenv_does(make_venv, tmp_path):
    root = pyenv_root()
    py27 = pyenv_python("2.7")
    if root is None or not (root / "shims" / "pip").exists():
        pytest.skip("needs pyenv with its shims (see .ci/run)")
    venv = make_venv("3.9")
    env = check_env(
        tmp_path / "home", root / "shims", venv.bin, PYENV_ROOT=str(root),
        PYENV_VERSION=py27.parent.parent.name,
    )  # fmt: skip
    res = run_check(venv.python, env, tmp_path)

    # pyenv's own answer, for comparison
    pyenv = shutil.which("pyenv") or root / "bin" / "pyenv"
    which = subprocess.run([pyenv, "which", "pip"], env=env, capture_output=True, text=True)
    assert which.returncode == 0, which.stderr
    commands = {c["name"]: c for c in res.facts["python"]["commands"] if c["first_on_path"]}
    assert commands["pip"]["via"] == f"pyenv shim → {which.stdout.strip()}"
    [f] = res.findings(DRIFT)
    assert any(f"installs into {py27.parent.parent} (Python 2.7" in e for e in f["evidence"])


def test_env_shebang_is_resolved_on_path(make_venv, tmp_path):
    venv = make_venv("3.9")
    other = pyenv_python("3.10")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    _script(scripts / "pip", "#!/usr/bin/env python3.10\n")
    env = check_env(tmp_path / "home", scripts, venv.bin, other.parent)
    res = run_check(venv.python, env, tmp_path)

    [f] = res.findings(DRIFT)
    [line] = f["evidence"]
    assert f"shebang `#!/usr/bin/env python3.10`, which finds {other.parent / 'python3.10'}" in line
    assert f"installs into {other.parent.parent} (Python 3.10" in line


def test_names_of_one_interpreter_report_what_each_name_runs(make_venv, tmp_path):
    """python, python2 and python2.7 beside each other are one interpreter, looked at
    once: each name is still reported as what running that name really gives."""
    venv = make_venv("3.9")
    py27 = pyenv_python("2.7")
    res = run_check(venv.python, check_env(tmp_path / "home", py27.parent, venv.bin), tmp_path)

    seen = res.facts["python"]["interpreters"]
    names = [p for p in seen if p.startswith(str(py27.parent)) or p.startswith(str(venv.bin))]
    assert len({p for p in names if p.startswith(str(py27.parent))}) >= 2, sorted(seen)
    code = "import sys; print(sys.executable); print(sys.prefix); print(sys.version.split()[0])"
    for name in names:
        out = subprocess.run([name, "-c", code], capture_output=True, text=True, check=True)
        executable, prefix, version = out.stdout.split()
        assert seen[name]["path"] == name
        assert seen[name]["executable"] == executable, name
        assert (seen[name]["prefix"], seen[name]["version"]) == (prefix, version), name
