"""The command line's contract: version, help, exit codes, one-line errors."""

import json
import subprocess

from caffedoc import __version__
from tests.conftest import REPO, caffedoc
from tests.fixtures.envs import Venv, pyenv_python


def test_version():
    res = caffedoc("--version")
    assert res.returncode == 0
    assert res.stdout.strip() == f"caffedoc {__version__}"


def test_help_lists_every_command_and_each_has_its_own_help():
    from caffedoc.cli import app

    names = [c.callback.__name__ for c in app.registered_commands]
    assert len(names) >= 8
    res = caffedoc("--help")
    assert res.returncode == 0
    commands = res.stdout.split("Commands:", 1)[1]
    listed = {line.split()[0] for line in commands.splitlines() if line.strip()}
    assert set(names) <= listed, (names, res.stdout)
    for name in names:
        own = caffedoc(name, "--help")
        assert own.returncode == 0 and f"caffedoc {name} [OPTIONS]" in own.stdout, own.stdout


def test_unknown_option_is_usage_error():
    res = caffedoc("check", "--no-such-option")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


def test_python_that_does_not_exist(tmp_path):
    res = caffedoc("check", "--python", str(tmp_path / "nope"))
    assert res.returncode == 2
    assert res.stderr.strip() == f"caffedoc: error: --python {tmp_path / 'nope'}: no such file"


def test_python_that_is_not_a_python(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    res = caffedoc("check", "--python", str(fake))
    assert res.returncode == 2
    assert "not a Python interpreter" in res.stderr
    assert "Traceback" not in res.stderr


def test_check_json_shape():
    res = caffedoc("check", "--json")
    assert res.returncode in (0, 1)
    report = json.loads(res.stdout)
    assert report["caffedoc"] == __version__
    assert report["status"] in ("ok", "warning", "error")
    assert report["facts"]["system"]["os_id"]
    for f in report["findings"]:
        assert set(f) == {"id", "area", "severity", "title", "evidence", "fix", "references"}
    assert (res.returncode == 1) == (report["status"] == "error")


def test_every_command_parses_its_options_on_the_oldest_python(tmp_path):
    """Python 3.9 is the floor: typer there ignores `Annotated` options in a module with
    postponed annotations, which silently renames `--json` to `--as-json`. Installed from
    a wheel, as a user would, so the packaged recipes are exercised too."""
    venv = Venv(tmp_path / "venv")
    subprocess.run([pyenv_python("3.9"), "-m", "venv", venv.root], check=True)
    subprocess.run(
        [venv.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
        check=True,
        timeout=600,
    )
    caffedoc_39 = venv.bin / "caffedoc"
    for argv in (
        ["check", "--json"],
        ["recipes", "--json"],
        ["build", "--cpu-only", "--dry-run", "--json"],
        ["fix", "--json", "--only", "shadowed-caffe"],
    ):
        res = subprocess.run([caffedoc_39, *argv], capture_output=True, text=True, timeout=120)
        assert res.returncode in (0, 1), (argv, res.stderr)
        json.loads(res.stdout)
    nope = tmp_path / "nope"
    res = subprocess.run(
        [caffedoc_39, "smoke", "--json", "--python", nope], capture_output=True, text=True
    )
    assert res.returncode == 2
    assert res.stderr.strip() == f"caffedoc: error: --python {nope}: no such file"
