"""The README's install line, run literally where a stranger would: a fresh Debian 12
root (debootstrap minbase) with nothing of ours, as a user with sudo, not root."""

from __future__ import annotations

import re

from tests.conftest import REPO
from tests.fixtures.roots import copy_checkout, debootstrap, in_root, ok, reach_registries


def setup_lines() -> list[str]:
    """The commands of the README's "Set up" block, comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set up\n.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no sh block under '## Set up'"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_gives_two_set_up_commands():
    install, tests = setup_lines()
    assert install.endswith("caffedoc check")
    assert tests == "bash .ci/run"


def test_the_install_line_works_on_a_fresh_debian12_as_a_user_with_sudo(tmp_path):
    root = debootstrap(tmp_path / "root", "bookworm")
    # A machine as people get it has sudo and a user allowed to use it; nothing else is added.
    ok(
        in_root(
            root,
            "apt-get update -qq && apt-get install -y -qq sudo >/dev/null"
            " && useradd --create-home --shell /bin/sh stranger"
            " && echo 'stranger ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/stranger",
        )
    )
    reach_registries(root)
    copy_checkout(root / "home/stranger/caffedoc")
    ok(in_root(root, "chown -R stranger: /home/stranger/caffedoc"))
    install = setup_lines()[0]
    res = in_root(
        root,
        f"cd ~/caffedoc && {install}",
        HOME="/home/stranger",
        USER="stranger",
        user="stranger",
    )
    report = res.stdout
    # check's exit status says what it found (no Caffe here); the install itself must work.
    assert res.returncode in (0, 1), f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert "[✓] System" in report and "Debian GNU/Linux 12 (bookworm)" in report, report
    assert "[caffe-missing]" in report
    assert "externally-managed-environment" not in res.stderr
