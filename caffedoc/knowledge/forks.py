"""A net written for a Caffe fork, run by another Caffe: the names only a fork has.

SSD's `norm_param`, CTPN's `transpose_param`, TSN's `num_segments`, R-FCN's
`PSROIPooling`, SSD's `caffe.model_libs`: a Caffe that lacks them fails to parse the
net ("has no field named"), to create the layer ("Unknown layer type"), or pycaffe
to find them ("has no attribute", "No module named"). Whether the fork was never
built or another Caffe is found first, the cause is the same (fork-required), and it
explains the parse error that prototxt-parse would otherwise name: these signatures
outrank it (see `Signature.outranks`).

The names come from the forks' own sources (`forks_data`, generated). A fork not in
the table still shows by what upstream lacks, and counts a little less: a field of
LayerParameter ending in `_param`, or of a layer's message, that resembles none of
upstream's (a typo resembles one: `Signature.accept` tells them apart), a V1 layer
type in upper case that upstream's enum never had, a caffe/layers header upstream
never had. The same tables tell a pycaffe older than the code: a name upstream's
pycaffe gained after its first release, missing, is shadowed-caffe's.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from typing import NamedTuple

from caffedoc.knowledge import Signature, any_of, forks_data, owners

SOURCE = "caffedoc/knowledge/forks_data.py"
PROBLEM = "fork-required"
OLDER = "shadowed-caffe"  # a Caffe older than the code, found before the one meant
OLDER_HINT = (
    "The caffe imported is older than the code: upstream's pycaffe gained this name after "
    "its first release. See which one loads (python -c 'import caffe; print(caffe.__file__)') "
    "and update it, or put the newer build first."
)
OUTRANKS = ("prototxt-parse",)
NO_FIELD = r" has\s?no\s?field named "  # protobuf's words, as pastes mangle their spaces
# caffe.proto's package, or that of a reader's copy of it: TensorRT's (ditcaffe, then
# trtcaffe), OpenCV's dnn (opencv_caffe)
PACKAGE = r"(?:dit|trt|opencv_)?caffe\."


class Fork(NamedTuple):
    """One row of forks_data.FORKS: what a fork adds to upstream, where it came from."""

    called: str  # what users call it: "SSD"
    repo: str
    ref: str
    commit: str
    fields: tuple[tuple[str, str], ...]  # (message, field) pairs
    values: tuple[str, ...]  # enum values
    messages: tuple[str, ...]
    layers: tuple[str, ...]  # registered layer types
    modules: tuple[str, ...]  # pycaffe modules
    python: tuple[str, ...]  # pycaffe functions, classes and bindings

    def names(self) -> set[str]:
        """Every name a log can quote of it."""
        fields = {f for _, f in self.fields}
        messages = {m.split(".")[-1] for m in self.messages}
        return fields | messages | {*self.values, *self.layers, *self.modules, *self.python}


FORKS = tuple(Fork(*row) for row in forks_data.FORKS)


def _distinct(name: str) -> bool:
    """A pycaffe name no other code would have by chance (not `zero`, `deconv`)."""
    return "_" in name.strip("_") or any(c.isupper() for c in name) or len(name) >= 10


# upstream messages whose unknown fields are not a layer's: a net's or solver's field
# upstream lacks is an older project's (a removed solver option), or the name of a net
# whose weights were given as its definition
NOT_LAYERS = ("NetParameter", "SolverParameter", "SolverState", "NetState", "NetStateRule")
LIKE_A_TYPO = 0.75  # difflib's ratio from which a name reads as another, mistyped


@functools.cache
def _upstream_fields() -> dict[str, frozenset[str]]:
    fields: dict[str, set[str]] = {}
    for message, field in forks_data.UPSTREAM_FIELDS:
        fields.setdefault(message.split(".")[-1], set()).add(field)
    return {m: frozenset(f) for m, f in fields.items()}


def _not_upstream(match: re.Match[str]) -> bool:
    """A field upstream's message lacks and none of whose fields it resembles: not a
    typo (`num_outputs`), not one a newer upstream added (`dilation`), not a layer's
    field put in the layer itself (`kernel_size`), so a fork's."""
    message, name = match.group(1), match.group(2)
    fields = _upstream_fields()
    own = fields.get(message, frozenset())
    if name in own or (
        message.endswith("LayerParameter") and any(name in f for f in fields.values())
    ):
        return False
    return not difflib.get_close_matches(name, own, n=1, cutoff=LIKE_A_TYPO)


def _not_a_typo_of_a_layer_param(match: re.Match[str]) -> bool:
    """A `*_param` whose stem resembles no upstream layer's (`bn`, not `batchnorm` for
    `batch_norm`): the shared suffix would make every one resemble some other."""
    stems = [f.removesuffix("_param") for f in _upstream_fields()["LayerParameter"]]
    return not difflib.get_close_matches(match.group(1), stems, n=1, cutoff=LIKE_A_TYPO)


@functools.cache
def signatures() -> dict[str, tuple[Signature, ...]]:
    fields: dict[str, set[str]] = {}
    values, messages, layers, modules, python = set(), set(), set(), set(), set()
    for fork in FORKS:
        for message, field in fork.fields:
            fields.setdefault(message, set()).add(field)
        values.update(fork.values)
        messages.update(fork.messages)
        layers.update(fork.layers)
        modules.update(fork.modules)
        python.update(n for n in fork.python if _distinct(n))
    by_message = "|".join(
        f'{re.escape(m)}"{NO_FIELD}"(?:{any_of(f)})' for m, f in sorted(fields.items())
    )
    attributes = any_of(values | {m.split(".")[-1] for m in messages} | python)
    upstream_layer_fields = {
        f for m, f in forks_data.UPSTREAM_FIELDS if m in ("LayerParameter", "V1LayerParameter")
    }
    upstream_messages = {m.split(".")[-1] for m, _ in forks_data.UPSTREAM_FIELDS}
    layer_messages = any_of(upstream_messages - set(NOT_LAYERS))
    fork_messages = {m.split(".")[-1] for m in messages} - upstream_messages
    fork_layer_params = {
        f for f in fields.get("LayerParameter", ()) if f.endswith("_param")
    } - upstream_layer_fields
    forms = (
        # the exact pairs in a lookahead, so that the line's anchor stays the message's
        # own words rather than hundreds of pairs
        (3.0, rf'"{PACKAGE}(?=(?:{by_message})")[\w.]+"{NO_FIELD}"\w+"'),
        (3.0, rf'Unknown enumeration value of "(?:{any_of(values)})" for field'),
        # a fork's layer parameter however a paste mangled the words around it (the
        # message's quotes or name dropped, words doubled): the name alone is the fork's
        (2.5, rf'no\s?field named "?(?:{any_of(fork_layer_params)})\b'),
        # pycaffe's caffe_pb2 without them (net_spec's P.MultiBoxLoss.MAX_NEGATIVE)
        (
            3.0,
            rf"(?:type object '\w+'|module '?caffe\.proto\.caffe_pb2'?|'module' object) "
            rf"has no attribute '(?:{attributes})'",
        ),
        (3.0, rf"No module named '?(?:caffe\.)?(?:{any_of(modules)})'?\s*$"),
        # a name a fork's pycaffe defines (model_libs' DeconvBNLayer, Net.backward_from_layer)
        (
            3.0,
            rf"(?:object|module '[\w.]+') has no attribute '(?:{any_of(python)})'"
            rf"|name '(?:{any_of(python)})' is not defined",
        ),
        # a reader of Caffe nets refusing a fork's layer type: OpenCV's dnn, TensorRT's
        # parser, NCSDK's compiler, Arm NN, OpenVINO's Model Optimizer
        (
            2.5,
            r"(?:Can't create layer \"[^\"]*\" of type|could not parse layer type"
            r"|Stage Type Not Supported:|[Uu]nsupported layer type:?|with op =)"
            rf" ['\"]?(?:{any_of(layers)})\b",
        ),
        # pycaffe's net_spec asking its caffe_pb2 for a layer type's *_param name, then the
        # KeyError naming a type upstream never had: a net written for a fork's layers
        (1.5, r"_param_names\[self\.type_name\]"),
        (1.0, rf"^KeyError: '(?!(?:{any_of(forks_data.UPSTREAM_LAYERS)})')[A-Z]\w*'"),
        # with the registry whole (upstream's types listed): not a build that lost them
        (3.0, rf"Unknown layer type: (?:{any_of(layers)}) \(known types: AbsVal, Accuracy\b"),
        # any other type such a registry lacks (a fork not in the table, or a newer
        # upstream than the Caffe that runs: FCN's Crop once), unless a Python layer (a
        # build without WITH_PYTHON_LAYER) or one it lists under another case (Relu for
        # ReLU: a typo in the prototxt)
        (
            2.0,
            r"(?i)Unknown layer type: (?!Python\b)(\w+) "
            r"\(known types: AbsVal, Accuracy\b(?!.*\b\1\b)",
        ),
        # a V1 layer type (`layers {{ type: MULTI_STAGE_MEANFIELD }}`) upstream's enum lacks;
        # a V2 name in V1's syntax (`type: Convolution`) is not upper case: a parse error
        (
            2.5,
            rf'Unknown enumeration value of "(?!(?:{any_of(forks_data.UPSTREAM_VALUES)})")'
            r'[A-Z][A-Z0-9_]*" for field "type"',
        ),
        # a layer header upstream never had: a fork's code compiled against another Caffe
        (
            2.0,
            rf"caffe/layers/(?!(?:{any_of(owners.UPSTREAM_LAYER_HEADERS)})\.hpp)\w+\.hpp"
            r"[\"'\u2019>]?\W{0,4}(?:No such file|file not found|Cannot open include file)",
        ),
        # any field of a message only forks have: another variant of that fork
        (2.5, rf'"{PACKAGE}(?:{any_of(fork_messages)})"{NO_FIELD}"\w+"'),
        # a layer's parameter message upstream lacks, asked of pycaffe's caffe_pb2
        (
            2.5,
            rf"has no attribute '(?!(?:{any_of(upstream_messages)})')[A-Z]\w*Parameter'",
        ),
        # a layer type upstream never had (in any case: Relu is upstream's ReLU mistyped),
        # the registry cut off or whole; a registry without upstream's own types is a
        # build that dropped its registrations (a static library), not another Caffe
        (
            2.0,
            rf"(?i)Unknown layer type: (?!(?:Python|{any_of(forks_data.UPSTREAM_LAYERS)})\b)\w+\b"
            r"(?! \(known types: (?!AbsVal\b))",
        ),
    )
    # a field of a layer's upstream message that only a fork adds (DSS's
    # ImageDataParameter.normalize, IEF's PoolingParameter.round_below), told from a typo
    # by `_not_upstream`
    any_field = Signature(
        re.compile(rf'"{PACKAGE}({layer_messages})"{NO_FIELD}"(\w+)"'),
        2.5,
        SOURCE,
        outranks=OUTRANKS,
        accept=_not_upstream,
    )
    # a layer's *_param upstream lacks: a fork's layer, unless a typo of upstream's
    layer_param = Signature(
        re.compile(
            rf'"{PACKAGE}(?:V1)?LayerParameter"{NO_FIELD}"(?!(?:{any_of(upstream_layer_fields)})")(\w+)_param"'
        ),
        2.5,
        SOURCE,
        outranks=OUTRANKS,
        accept=_not_a_typo_of_a_layer_param,
    )
    # a name pycaffe gained after upstream's first release, missing from the caffe that
    # was imported: a pycaffe older than the code found first (or its pycaffe.py newer
    # than its _caffe.so)
    older = (
        r"(?:'(?:Net|\w*Solver|Blob|Layer)' object|module '?caffe(?:\._caffe)?'?) "
        rf"has no attribute '(?:{any_of(forks_data.UPSTREAM_LATER_BINDINGS)})'"
    )
    return {
        PROBLEM: (
            *(Signature(re.compile(p), w, SOURCE, outranks=OUTRANKS) for w, p in forms),
            layer_param,
            any_field,
        ),
        OLDER: (Signature(re.compile(older), 2.5, SOURCE, hint=OLDER_HINT),),
    }


_NAMED = re.compile(
    r'has\s?no\s?field named "(\w+)"|Unknown layer type: (\w+)|Unknown enumeration value of "(\w+)"'
    r"|has no attribute '(\w+)'|No module named '?(?:caffe\.)?(\w+)|name '(\w+)' is not defined"
)
SHOWN = 4  # forks named per missing name; the rest are counted


def defined_by(lines: Iterable[str]) -> str | None:
    """Which forks define the names these lines miss: "norm_param: SSD (weiliu89/caffe, branch
    ssd), …".

    A name in no fork of the table is its net's own fork's, the one it was published
    with; or upstream's own, which a Caffe older than the net lacks (Crop, BatchNorm).
    """
    found: dict[str, list[str]] = {}
    for line in lines:
        for match in _NAMED.finditer(line):
            name = next(g for g in match.groups() if g)
            found.setdefault(name, [])
    if not found:
        return None
    for fork in FORKS:
        names = fork.names()
        for name, forks in found.items():
            if name in names:
                forks.append(f"{fork.called} ({fork.repo}, branch {fork.ref})")
    upstream = {f for _, f in forks_data.UPSTREAM_FIELDS} | set(forks_data.UPSTREAM_LAYERS)
    said = []
    for name, forks in found.items():
        if forks:
            more = f", and {len(forks) - SHOWN} more" if len(forks) > SHOWN else ""
            said.append(f"{name}: {', '.join(forks[:SHOWN])}{more}")
        elif name in upstream:
            said.append(f"{name}: upstream Caffe's own, newer than the Caffe that ran")
        else:
            said.append(f"{name}: no fork caffedoc knows; the one the net was published with")
    return "; ".join(said)
