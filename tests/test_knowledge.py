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


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('title = "t"\narea = "nowhere"\n', "field 'area' must be one of"),
        (
            'title = " "\narea = "cuda"\nsummary = "s"\nfix = "f"\nreferences = []\n',
            "'title' is empty",
        ),
        (
            'title = "t"\narea = "cuda"\nsummary = "s"\nfix = ""\nreferences = []\n',
            "'fix' is empty",
        ),
        (
            'title = "t"\narea = "cuda"\nsummary = "s"\nfix = "f"\nreferences = []\n'
            "[[signatures]]\npattern = 'x'\nhint = 3\n",
            r"signatures\[0\]\.hint must be a str",
        ),
    ],
)
def test_an_entry_without_its_words_is_refused(knowledge_dir, body, says):
    """Every entry has words to print (what it is, what to do): the parser refuses one
    that lacks them, so no report can show an empty title or fix."""
    (knowledge_dir / "bad-entry.toml").write_text('id = "bad-entry"\n' + body)
    with pytest.raises(knowledge.KnowledgeError, match=says):
        knowledge.entries()


def test_malformed_entry_names_file_and_field(knowledge_dir):
    (knowledge_dir / "bad-entry.toml").write_text('id = "bad-entry"\ntitle = 3\n')
    with pytest.raises(knowledge.KnowledgeError, match=r"bad-entry.toml: field 'area'"):
        knowledge.entries()
