"""The facts that hosts of one fleet should agree on, taken out of a report's facts.

Each is reduced to one short string (None: nothing found), so hosts compare by equality.
Paths stay in where they tell hosts apart: a caffe loaded from another place is a stale one.
"""

from __future__ import annotations

from collections.abc import Callable

Getter = Callable[[dict], "str | None"]


def _at(data: object, *keys: str | int) -> object:
    for key in keys:
        if isinstance(key, int):
            data = data[key] if isinstance(data, list) and -len(data) <= key < len(data) else None
        else:
            data = data.get(key) if isinstance(data, dict) else None
    return data


def _str(value: object) -> str | None:
    return str(value) if value not in (None, "", []) else None


def _joined(values: object, key: str) -> str | None:
    if not isinstance(values, list):
        return None
    found = sorted({str(v[key]) for v in values if isinstance(v, dict) and v.get(key)})
    return ", ".join(found) or None


def _python(facts: dict) -> str | None:
    version = _str(_at(facts, "python", "target", "version"))
    if version is None:
        return None
    return f"{version} ({_at(facts, 'python', 'target', 'implementation') or 'python'})"


def _protobuf(facts: dict) -> str | None:
    runtimes = _at(facts, "protobuf", "runtimes")
    if not isinstance(runtimes, list) or not runtimes:
        return None
    target = _at(facts, "protobuf", "python")
    mine = [r for r in runtimes if isinstance(r, dict) and r.get("interpreter") == target]
    mine = mine[0] if mine else runtimes[0]
    version = _str(_at(mine, "version"))
    impl = _str(_at(facts, "protobuf", "implementation"))
    return f"{version} ({impl})" if version and impl else version


def _libprotobuf(facts: dict) -> str | None:
    """The libprotobuf Caffe loads, else those in the linker cache; with dpkg's version."""
    links = _at(facts, "protobuf", "caffe_links")
    dpkg = _at(facts, "protobuf", "dpkg")
    dpkg = dpkg if isinstance(dpkg, dict) else {}
    if isinstance(links, list) and links:
        sonames = {str(links[0])}
    else:
        cache = _at(facts, "protobuf", "linker_cache")
        cache = cache if isinstance(cache, list) else []
        sonames = {
            str(e[0])
            for e in cache
            if isinstance(e, list) and e and str(e[0])[:15] == "libprotobuf.so."
        }
    shown = []
    for soname in sorted(sonames):
        version = dpkg.get(f"libprotobuf{soname.rpartition('.so.')[2]}")
        shown.append(f"{soname} ({version})" if version else soname)
    return ", ".join(shown) or None


def _caffe(facts: dict) -> str | None:
    installs = _at(facts, "caffe", "installs")
    if not isinstance(installs, list):
        return None
    winner = next((i for i in installs if isinstance(i, dict) and i.get("wins")), None)
    if winner is None:
        return "none"
    extension = winner.get("extension")
    build = "no _caffe.so"
    if isinstance(extension, dict):
        build = "GPU build" if extension.get("gpu") else "CPU build"
    return f"{build}, {winner.get('path')}"


def _recipe(facts: dict) -> str | None:
    cmake = _at(facts, "caffe", "tree", "cmake")
    if not isinstance(cmake, dict) or not cmake:
        return None
    return ", ".join(f"{k}={v}" for k, v in sorted(cmake.items()))


# key, label, getter: the order the views show them in.
FACTS: tuple[tuple[str, str, Getter], ...] = (
    ("os", "OS", lambda f: _str(_at(f, "system", "os_name"))),
    ("python", "Python", _python),
    ("protobuf", "protobuf runtime", _protobuf),
    ("libprotobuf", "libprotobuf", _libprotobuf),
    ("caffe", "Caffe", _caffe),
    ("caffe_cmake", "Caffe build options", _recipe),
    ("cuda", "CUDA", lambda f: _joined(_at(f, "cuda", "toolkits"), "version")),
    ("driver", "driver", lambda f: _str(_at(f, "cuda", "driver", "version"))),
    ("cudnn", "cuDNN", lambda f: _joined(_at(f, "cuda", "cudnn_headers"), "version")),
)
LABELS = {key: label for key, label, _ in FACTS}


def summarize(facts: dict) -> dict[str, str | None]:
    """The fleet facts of one report; a malformed part reads as not found, never an error."""
    out: dict[str, str | None] = {}
    for key, _, get in FACTS:
        try:
            out[key] = get(facts)
        except (TypeError, AttributeError, KeyError, IndexError):
            out[key] = None
    return out
