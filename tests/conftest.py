"""Shared fixtures: each fixture module builds one kind of real environment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from caffedoc import knowledge

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = [
    "tests.fixtures.envs",
    "tests.fixtures.native",
    "tests.fixtures.caffe_build",
    "tests.fixtures.users",
    "tests.fixtures.wheel_gpu",
]


def caffedoc(
    *args: str, env: dict | None = None, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run the real CLI in a child process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "caffedoc", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


@pytest.fixture
def knowledge_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder the knowledge base is read from during the test: write entries in
    it; the real entries are read again afterwards."""
    kb = tmp_path / "knowledge"
    kb.mkdir()
    monkeypatch.setattr(knowledge, "HERE", kb)
    knowledge.entries.cache_clear()
    yield kb
    knowledge.entries.cache_clear()
