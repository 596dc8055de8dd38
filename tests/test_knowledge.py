"""The knowledge base loads, and every id the product promises exists."""

import pytest

from caffedoc import knowledge

REQUIRED = [
    "protobuf-version-drift",
    "protobuf-descriptor-clash",
    "interpreter-drift",
    "shadowed-caffe",
    "cuda-library-path",
    "cudnn-version",
    "cuda-arch",
    "opencv-build",
    "opencv-runtime-crash",
    "boost-python",
    "numpy-abi",
    "hdf5-not-found",
    "blas-not-found",
    "gpu-driver",
    "memorydata-input",
    "prototxt-parse",
]


def test_required_ids_exist():
    assert set(REQUIRED) <= set(knowledge.entries())


@pytest.mark.parametrize("pid", sorted(knowledge.entries()))
def test_entry_is_complete(pid):
    e = knowledge.get(pid)
    assert e.title and e.summary and e.fix
    assert e.area in knowledge.AREAS
    assert all(r.startswith("https://") for r in e.references)


def test_malformed_entry_names_file_and_field(tmp_path, monkeypatch):
    (tmp_path / "bad-entry.toml").write_text('id = "bad-entry"\ntitle = 3\n')
    monkeypatch.setattr(knowledge, "HERE", tmp_path)
    knowledge.entries.cache_clear()
    try:
        with pytest.raises(knowledge.KnowledgeError, match=r"bad-entry.toml: field 'area'"):
            knowledge.entries()
    finally:
        knowledge.entries.cache_clear()
