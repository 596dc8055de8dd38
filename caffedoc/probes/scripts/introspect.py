# Runs inside the interpreter being examined (Python 2.7 and 3.6+), as
# `python -c <this file's text>`, so sys.path starts as a user's `python -c`
# sees it. It imports nothing from site-packages: packages are located and
# their versions read from files, so a broken install cannot crash it.
# Prints one JSON object on stdout.
import json
import os
import re
import site
import sys
import sysconfig

PACKAGES = {
    "caffe": "caffe",
    "protobuf": os.path.join("google", "protobuf"),
    "numpy": "numpy",
}
VERSION_FILES = {
    "protobuf": ("__init__.py", r"^__version__\s*=\s*['\"]([^'\"]+)"),
    "numpy": ("version.py", r"^(?:full_)?version\s*(?::\s*str)?\s*=\s*['\"]([^'\"]+)"),
}
DIST_NAMES = {"protobuf": "protobuf", "numpy": "numpy", "caffe": "caffe"}


def read(path, limit=65536):
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def file_version(pkg_dir, name):
    spec = VERSION_FILES.get(name)
    if not spec:
        return None
    text = read(os.path.join(pkg_dir, spec[0])) or ""
    m = re.search(spec[1], text, re.M)
    return m.group(1) if m else None


def distribution(entry, name):
    """The dist-info/egg-info beside a package: its version and installer."""
    prefix = DIST_NAMES[name].lower()
    try:
        names = os.listdir(entry)
    except OSError:
        return None
    for n in sorted(names):
        low = n.lower()
        if not (low.endswith(".dist-info") or low.endswith(".egg-info")):
            continue
        base = low.rsplit(".", 1)[0]
        if base != prefix and not base.startswith(prefix + "-"):
            continue
        meta_dir = os.path.join(entry, n)
        meta = read(os.path.join(meta_dir, "METADATA")) or read(os.path.join(meta_dir, "PKG-INFO"))
        if meta is None and os.path.isfile(meta_dir):
            meta = read(meta_dir)
        m = re.search(r"^Version:\s*(\S+)", meta or "", re.M)
        installer = (read(os.path.join(meta_dir, "INSTALLER")) or "").strip() or None
        return {"dist": meta_dir, "version": m.group(1) if m else None, "installer": installer}
    return None


def find_in(entry, name, rel):
    """Where `name` lives in one sys.path entry, without importing it."""
    base = entry or os.getcwd()
    if os.path.isfile(base):  # a zip or egg on sys.path (zipfile is imported only then)
        import zipfile

        try:
            names = zipfile.ZipFile(base).namelist()
        except Exception:
            return None
        init = rel.replace(os.sep, "/") + "/__init__.py"
        if init in names:
            return {"path": os.path.join(base, init.rsplit("/", 1)[0]), "kind": "zip"}
        return None
    pkg = os.path.join(base, rel)
    if os.path.isdir(pkg):
        for init in ("__init__.py", "__init__.pyc"):
            if os.path.isfile(os.path.join(pkg, init)):
                return {"path": pkg, "kind": "package"}
        if name != "protobuf":
            return {"path": pkg, "kind": "namespace"}
        return None
    if name == "caffe" and os.path.isdir(base):
        for f in os.listdir(base):
            if f == "caffe.py" or (f.startswith("caffe.") and f.endswith(".so")):
                return {"path": os.path.join(base, f), "kind": "module"}
    return None


def describe(entry, index, name, rel):
    found = find_in(entry, name, rel)
    if found is None:
        return None
    found.update({"entry": entry, "index": index, "version": None, "installer": None})
    if found["kind"] in ("package", "namespace"):
        found["version"] = file_version(found["path"], name)
        dist = distribution(entry or os.getcwd(), name)
        if dist:
            found["version"] = found["version"] or dist["version"]
            found["installer"] = dist["installer"]
            found["dist"] = dist["dist"]
        if name == "caffe":
            try:
                files = sorted(os.listdir(found["path"]))
            except OSError:
                files = []
            found["extensions"] = [
                os.path.join(found["path"], f)
                for f in files
                if f.startswith("_caffe") and (f.endswith(".so") or f.endswith(".pyd"))
            ]
            pb2 = os.path.join(found["path"], "proto", "caffe_pb2.py")
            found["pb2"] = pb2 if os.path.isfile(pb2) else None
    return found


def site_dirs():
    dirs = []
    if hasattr(site, "getsitepackages"):
        dirs.extend(site.getsitepackages())
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p and p not in dirs:
            dirs.append(p)
    user = None
    if getattr(site, "ENABLE_USER_SITE", False) and hasattr(site, "getusersitepackages"):
        user = site.getusersitepackages()
    return dirs, user


def pth_files(dirs):
    out = []
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if not n.endswith(".pth"):
                continue
            path = os.path.join(d, n)
            adds, imports = [], 0
            for line in (read(path) or "").splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith(("import ", "import\t")):
                    # executed code: count the directories it names as ones it adds
                    # (e.g. `import sys; sys.path.insert(0, '/opt/caffe/python')`)
                    imports += 1
                    for m in re.finditer(r"'(/[^']+)'|\"(/[^\"]+)\"", line):
                        target = m.group(1) or m.group(2)
                        if os.path.isdir(target) and target not in adds:
                            adds.append(os.path.normpath(target))
                    continue
                target = os.path.normpath(os.path.join(d, line))
                if os.path.exists(target):
                    adds.append(target)
            out.append({"file": path, "adds": adds, "imports": imports})
    return out


def main():
    dirs, user = site_dirs()
    path = list(sys.path)
    packages = {}
    for name, rel in PACKAGES.items():
        found, seen = [], set()
        for i, entry in enumerate(path):
            key = os.path.normpath(os.path.join(os.getcwd(), entry))
            if key in seen:  # a directory listed twice: only its first place counts
                continue
            seen.add(key)
            info = describe(entry, i, name, rel)
            if info is not None:
                found.append(info)
        packages[name] = found
    version = "%d.%d.%d" % sys.version_info[:3]
    out = {
        "executable": sys.executable,
        "version": version,
        "implementation": sys.implementation.name if hasattr(sys, "implementation") else "cpython",
        "soabi": sysconfig.get_config_var("SOABI"),
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX") or sysconfig.get_config_var("SO"),
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "real_prefix", getattr(sys, "base_prefix", sys.prefix)),
        "sys_path": path,
        "cwd": os.getcwd(),
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "site_dirs": dirs,
        "user_site": user,
        "pth": pth_files(dirs + ([user] if user else [])),
        "packages": packages,
        "protobuf_implementation_env": os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"),
    }
    sys.stdout.write(json.dumps(out))
    sys.stdout.write("\n")


main()
