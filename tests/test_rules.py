"""The rules' shape: one registry, every knowledge entry used, remedies that print what
fix applies, and the data rules read (CUDA targets, bad pairs) coming from data files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from caffedoc import detect, knowledge
from caffedoc.registry import Registry
from tests.conftest import REPO

SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "caffedoc").rglob("*.py"))


def test_registry_refuses_an_unknown_id_and_a_second_entry_under_one_id():
    reg: Registry[str] = Registry((), knowledge.get)
    with pytest.raises(KeyError):
        reg.register("no-such-problem")("x")
    reg.register("cuda-arch")("first")
    reg.register("cuda-arch")("first")  # the same entry again (a re-import) is fine
    with pytest.raises(ValueError, match="cuda-arch is registered twice"):
        reg.register("cuda-arch")("second")
    assert reg.all() == {"cuda-arch": "first"}


def test_registry_imports_its_modules_only_when_read():
    code = (
        "import sys\nfrom caffedoc import detect\n"
        "assert 'caffedoc.detect.cuda' not in sys.modules\n"
        "assert 'cuda-arch' in detect.RULES.all() and 'caffedoc.detect.cuda' in sys.modules\n"
    )
    res = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", code], cwd=REPO, capture_output=True
    )
    assert res.returncode == 0, res.stderr.decode()


@pytest.mark.parametrize("pid", sorted(knowledge.entries()))
def test_every_entry_is_reached_by_a_rule_a_signature_or_the_code(pid):
    """An entry nothing can report is dead text (the parser cannot see that)."""
    entry = knowledge.get(pid)
    assert pid in detect.RULES.all() or entry.signatures or f'"{pid}"' in SOURCE, pid
    assert all(r.startswith("https://") for r in entry.references), pid


def test_every_rule_with_a_remedy_gives_words_without_planning():
    """`check` asks each remedy for words only (ctx None): it must never plan there."""
    with_remedy = {pid for pid, rule in detect.RULES.all().items() if rule.remedy}
    assert {"cuda-library-path", "shadowed-caffe", "caffe-missing"} <= with_remedy
    assert {"protobuf-version-drift", "protobuf-descriptor-clash"} <= with_remedy
    assert not list((REPO / "caffedoc" / "fix").glob("cuda.py"))  # the remedy is the rule's


def test_cuda_targets_are_data_and_a_new_release_is_one_line(knowledge_dir):
    from caffedoc.detect.cuda import target_ranges

    for p in Path(knowledge.__file__).parent.glob("*.toml"):
        (knowledge_dir / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    assert target_ranges()[13] == (75, None) and target_ranges()[8] == (20, 62)
    arch = knowledge_dir / "cuda-arch.toml"
    arch.write_text(arch.read_text(encoding="utf-8") + "14 = [80]\n", encoding="utf-8")
    knowledge.entries.cache_clear()
    assert target_ranges()[14] == (80, None)


def test_a_malformed_detect_table_names_the_file_and_field(knowledge_dir):
    text = (Path(knowledge.__file__).parent / "cuda-arch.toml").read_text(encoding="utf-8")
    head = text.split("[detect.targets]")[0]
    (knowledge_dir / "cuda-arch.toml").write_text("detect = 3\n" + head)
    with pytest.raises(knowledge.KnowledgeError, match=r"cuda-arch\.toml: field 'detect'"):
        knowledge.entries()


def test_no_rule_module_is_left_unregistered():
    """A rule module must be in MODULES, or its rules are silently never run."""
    folder = Path(detect.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__", "cudafacts"}
    assert modules == set(detect.MODULES)
