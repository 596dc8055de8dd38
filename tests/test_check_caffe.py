"""Caffe installs, diagnosed on real ones: none at all, a stale copy earlier on
sys.path (PYTHONPATH, a .pth file), a compiled module whose libcaffe is gone, a
--caffe build the interpreter cannot see, and the real Caffe built by the recipe.
Each broken case has a healthy twin the rule must pass."""

from __future__ import annotations

import pytest

from tests.fixtures.envs import check_env, pyenv_python, run_check

MISSING, SHADOWED, LIBRARY = "caffe-missing", "shadowed-caffe", "caffe-library-missing"
CRASH = "caffe-import-crash"
MINE = {
    MISSING,
    SHADOWED,
    LIBRARY,
    CRASH,
    "interpreter-drift",
    "protobuf-version-drift",
    "numpy-abi",
}


@pytest.fixture
def tree(build_pycaffe, gencode, tmp_path):
    """A working pycaffe install for Python 3.9 (libcaffe.so.1.0.0 + python/caffe)."""
    trees = tmp_path / "trees"  # not the working directory: that holds nothing named caffe
    return lambda name: build_pycaffe(trees / name, pyenv_python("3.9"), gencode("builder"))


@pytest.fixture
def venv(make_venv):
    """A venv of its own (tests pin things into its site-packages)."""
    return make_venv("3.9", "protobuf==3.20.3", fresh=True)


def test_no_caffe_at_all(make_venv, tmp_path):
    venv = make_venv("3.9")
    res = run_check(venv.python, check_env(tmp_path / "home", venv.bin), tmp_path)

    [f] = res.findings(MISSING)
    assert f["severity"] == "warning"
    assert "caffedoc build" in f["fix"]
    assert f"no caffe package on the sys.path of {venv.python}" in f["evidence"]
    assert any("No module named 'caffe'" in e for e in f["evidence"])
    assert not {SHADOWED, LIBRARY} & res.ids()
    assert not [g for g in res.report["findings"] if g["id"] in MINE and g["severity"] == "error"]


def test_caffe_tree_the_interpreter_cannot_see(venv, tree, tmp_path):
    built = tree("caffe")
    env = check_env(tmp_path / "home", venv.bin)
    res = run_check(venv.python, env, tmp_path, "--caffe", str(built.root))

    [f] = res.findings(MISSING)
    assert f["severity"] == "error"
    assert any(f"holds {built.package}, which is not on sys.path" in e for e in f["evidence"])
    pin = f"sys.path.insert(0, '\"'\"'{built.python_dir}'\"'\"')' > {venv.site}/caffedoc-caffe.pth`"
    assert pin in f["fix"]
    assert res.facts["caffe"]["tree"]["libraries"] == [
        str(built.root / "lib" / "libcaffe.so"),
        str(built.libcaffe),
    ]


def test_caffe_tree_pinned_is_found(venv, tree, tmp_path):
    built = tree("caffe")
    built.pin(venv)
    env = check_env(tmp_path / "home", venv.bin)
    res = run_check(venv.python, env, tmp_path, "--caffe", str(built.root))

    assert not {MISSING, SHADOWED, LIBRARY} & res.ids()
    caffe = res.facts["caffe"]
    assert caffe["import_attempt"]["ok"] is True
    [install] = caffe["installs"]
    assert install["wins"] and install["in_tree"]
    assert install["origin"] == str(venv.site / "caffe.pth")
    assert install["extension"]["gpu"] is False
    assert install["extension"]["linkage"]["libraries"]["libcaffe.so.1.0.0"] == str(
        built.extension.parent / ".." / ".." / "lib" / "libcaffe.so.1.0.0"
    )


def test_pin_by_an_executable_pth_line(venv, tree, tmp_path):
    built = tree("caffe")
    pth = venv.site / "zz-caffe.pth"  # sorts last, but inserts at the front of sys.path
    pth.write_text(f"import sys; sys.path.insert(0, '{built.python_dir}')\n")
    res = run_check(venv.python, check_env(tmp_path / "home", venv.bin), tmp_path)

    [install] = res.facts["caffe"]["installs"]
    assert install["origin"] == str(pth)
    assert res.facts["python"]["target"]["sys_path"][1] == str(built.python_dir)  # after ''
    assert res.facts["caffe"]["import_attempt"]["ok"] is True


def test_stale_caffe_on_pythonpath_shadows_the_build(venv, tree, tmp_path):
    built, stale = tree("caffe"), tree("old-caffe")
    built.pin(venv)
    env = check_env(tmp_path / "home", venv.bin, PYTHONPATH=str(stale.python_dir))
    res = run_check(venv.python, env, tmp_path, "--caffe", str(built.root))

    [f] = res.findings(SHADOWED)
    assert f["severity"] == "error"
    assert f["evidence"][0] == (
        f"`import caffe` loads {stale.package} (sys.path entry {stale.python_dir} from PYTHONPATH)"
    )
    assert f["evidence"][1].startswith(f"the intended build, from --caffe {built.root}, is")
    assert f"entry {built.python_dir} from {venv.site / 'caffe.pth'}" in f["evidence"][1]
    assert f"remove {stale.python_dir} from PYTHONPATH" in f["fix"]


def test_without_the_stale_pythonpath_nothing_is_shadowed(venv, tree, tmp_path):
    built, _stale = tree("caffe"), tree("old-caffe")
    built.pin(venv)
    res = run_check(
        venv.python, check_env(tmp_path / "home", venv.bin), tmp_path, "--caffe", str(built.root)
    )
    assert SHADOWED not in res.ids()
    assert res.facts["caffe"]["import_attempt"]["caffe"] == str(built.package / "__init__.py")


def test_stale_broken_copy_pinned_by_an_earlier_pth(venv, tree, tmp_path):
    built, stale = tree("caffe"), tree("old-caffe")
    built.pin(venv)
    old_pth = stale.pin(venv, "00-old-caffe.pth")  # .pth files are read in name order
    stale.libcaffe.unlink()  # its build tree was cleaned: the old copy no longer loads
    res = run_check(venv.python, check_env(tmp_path / "home", venv.bin), tmp_path)

    [f] = res.findings(SHADOWED)
    assert f["severity"] == "error"
    assert (
        f"`import caffe` loads {stale.package} (sys.path entry {stale.python_dir} from {old_pth})"
        in f["evidence"]
    )
    assert any(e.startswith(f"also on sys.path, ignored: {built.package}") for e in f["evidence"])
    assert f"remove the line {stale.python_dir} from {old_pth}" in f["fix"]
    [lib] = res.findings(LIBRARY)
    assert any("libcaffe.so.1.0.0 => not found" in e for e in lib["evidence"])


def test_library_missing(venv, tree, tmp_path):
    built = tree("caffe")
    built.libcaffe.unlink()
    env = check_env(tmp_path / "home", venv.bin, PYTHONPATH=str(built.python_dir))
    res = run_check(venv.python, env, tmp_path)

    [f] = res.findings(LIBRARY)
    assert f["severity"] == "error"
    assert res.returncode == 1
    evidence = "\n".join(f["evidence"])
    assert f"pycaffe's module {built.extension} needs libraries" in evidence
    assert "libcaffe.so.1.0.0 => not found" in evidence
    assert "libcaffe.so.1.0.0: cannot open shared object file" in evidence  # the import itself


def test_library_present(venv, tree, tmp_path):
    built = tree("caffe")
    env = check_env(tmp_path / "home", venv.bin, PYTHONPATH=str(built.python_dir))
    res = run_check(venv.python, env, tmp_path)

    assert not {LIBRARY, CRASH} & res.ids()
    [install] = res.facts["caffe"]["installs"]
    assert install["extension"]["linkage"]["missing"] == []


def test_import_that_aborts_the_interpreter(venv, build_pycaffe, gencode, tmp_path):
    built = build_pycaffe(
        tmp_path / "trees" / "caffe", pyenv_python("3.9"), gencode("builder"), abort=True
    )
    env = check_env(tmp_path / "home", venv.bin, PYTHONPATH=str(built.python_dir))
    res = run_check(venv.python, env, tmp_path)

    [f] = res.findings(CRASH)
    assert f["severity"] == "error"
    assert f["evidence"][0] == f"`import caffe` under {venv.python}: killed by SIGABRT"
    assert "faulthandler" in f["fix"]
    assert res.facts["caffe"]["import_attempt"]["crashed"] == "killed by SIGABRT"


def test_library_found_in_the_tree_but_not_by_the_loader(venv, tree, tmp_path):
    built = tree("caffe")
    moved = built.root / "lib64"
    moved.mkdir()
    built.libcaffe.rename(moved / built.libcaffe.name)
    env = check_env(tmp_path / "home", venv.bin, PYTHONPATH=str(built.python_dir))
    res = run_check(venv.python, env, tmp_path, "--caffe", str(built.root))

    [f] = res.findings(LIBRARY)
    assert f"libcaffe.so.1.0.0 exists in {moved}" in f["fix"]


@pytest.mark.caffe
def test_real_caffe_built_by_the_recipe(built_caffe, tmp_path):
    env = dict(built_caffe.env, HOME=str(tmp_path))
    env["PATH"] = f"{built_caffe.python.parent}:{env.get('PATH', '')}"
    res = run_check(built_caffe.python, env, tmp_path, "--caffe", str(built_caffe.prefix))

    caffe = res.facts["caffe"]
    assert caffe["import_attempt"]["ok"] is True, caffe["import_attempt"]
    [install] = [i for i in caffe["installs"] if i["wins"]]
    assert install["in_tree"] and install["origin"].endswith(".pth")
    assert not MINE & res.ids(), [f for f in res.report["findings"] if f["id"] in MINE]
    pb = res.facts["protobuf"]
    assert pb["gencode"]["style"] == "builder"
    assert pb["caffe_links"][0].startswith("libprotobuf.so.")
    # caffe.pb.h was generated by the protoc that matches the headers it compiled with
    assert pb["pb_h"][1] == pb["headers"][1]


@pytest.mark.caffe
def test_stale_copy_ignored_behind_caffedocs_pin_is_no_problem(built_caffe, tmp_path):
    stale = tmp_path / "old" / "caffe"
    stale.mkdir(parents=True)
    (stale / "__init__.py").write_text("raise ImportError('the stale copy was imported')\n")
    env = dict(built_caffe.env, HOME=str(tmp_path), PYTHONPATH=str(stale.parent))
    res = run_check(built_caffe.python, env, tmp_path)

    assert res.facts["caffe"]["import_attempt"]["ok"] is True
    origins = {i["path"]: (i["wins"], i["origin"]) for i in res.facts["caffe"]["installs"]}
    assert origins[str(stale)] == (False, "PYTHONPATH")
    assert "shadowed-caffe" not in res.ids(), res.findings("shadowed-caffe")


def test_source_checkout_in_the_working_directory_is_not_a_caffe(make_venv, tmp_path):
    venv = make_venv("3.9")
    (tmp_path / "caffe" / "src").mkdir(parents=True)  # a checkout: no __init__.py at its top
    res = run_check(venv.python, check_env(tmp_path / "home", venv.bin), tmp_path)

    [f] = res.findings(MISSING)
    assert any("without __init__.py" in e and str(tmp_path / "caffe") in e for e in f["evidence"])
    [install] = res.facts["caffe"]["installs"]
    assert install["kind"] == "namespace"
    assert install["origin"] == f"the working directory ({tmp_path})"


@pytest.mark.caffe
def test_real_caffe_with_static_protobuf(built_caffe_static, tmp_path):
    env = dict(built_caffe_static.env, HOME=str(tmp_path))
    env["PATH"] = f"{built_caffe_static.python.parent}:{env.get('PATH', '')}"
    prefix = built_caffe_static.prefix
    res = run_check(built_caffe_static.python, env, tmp_path, "--caffe", str(prefix))

    # This venv has no pip of its own (it borrows the first one's packages), so the
    # `pip` on PATH feeding another Python is a true warning here; nothing else may show.
    assert not (MINE - {"interpreter-drift"}) & res.ids(), res.report["findings"]
    pb = res.facts["protobuf"]
    assert pb["caffe_links"] is None  # no shared libprotobuf behind Caffe
    assert pb["caffe_links_from"].startswith(str(prefix))
