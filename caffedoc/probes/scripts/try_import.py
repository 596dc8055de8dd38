# Runs inside the interpreter being examined (Python 2.7 and 3.6+), as
# `python -c <this file's text> MODULE...`, in its own process with a timeout: the
# real imports may abort or segfault, so each step prints its own JSON line
# (prefixed with MARK) and flushes before the next one starts.
#
# It imports the named modules in the order given (`caffe cv2`, `cv2 caffe`): one
# child serves both the caffe probe (how `import caffe` went) and the opencv probe
# (how the two imports fare in one process, in that order). Steps:
#   absent   - a module not installed at all; then the pair is not tried, only a
#              leading caffe (the caffe probe still wants its own import)
#   start    - an import begins: a crash after it names the module that died
#   module / error - it imported (file, version), or raised
#   import   - for caffe: its full account, as a user would `import caffe`
#   pb2      - whether caffe/proto/caffe_pb2.py loads (protobuf runtime vs
#              generated code): the import's own failure when it failed there,
#              else a load of the file on its own when the import never reached it
#   protobuf - the protobuf runtime's version and implementation (upb, cpp,
#              python), now that caffe has imported it
#   cv2-protobuf - what cv2's build information says about protobuf
#   mapped   - libprotobuf / libopencv_core files loaded, once the pair imported
#   done     - every step ran
# The caffe steps end with MARK + "caffe-done" on stderr too, so what caffe
# printed there can be told from what a later import printed.
import json
import os
import sys
import traceback

MARK = "@@caffedoc "


def emit(step, **data):
    data["step"] = step
    sys.stdout.write(MARK + json.dumps(data) + "\n")
    sys.stdout.flush()


def failure(exc):
    tb = traceback.extract_tb(sys.exc_info()[2])
    frames = ["%s:%d" % (f[0], f[1]) for f in tb[-4:]]
    pb2 = [f[0] for f in tb if os.path.basename(f[0]).startswith("caffe_pb2.py")]
    return {
        "pb2_failed": pb2[-1] if pb2 else None,
        "ok": False,
        "error_type": type(exc).__name__,
        "error": str(exc).strip(),
        "frames": frames,
    }


def module_file(name):
    mod = sys.modules.get(name)
    return getattr(mod, "__file__", None) if mod is not None else None


def findable(name):
    """Whether `name` is installed, found without running it."""
    try:
        import importlib.util

        return importlib.util.find_spec(name) is not None
    except ImportError:
        import imp

        try:
            imp.find_module(name)
            return True
        except ImportError:
            return False
    except Exception:
        return True


def locate_pb2():
    """Where the caffe package that wins lives, found without running it."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("caffe")
        where = list(spec.submodule_search_locations or []) if spec else []
    except Exception:
        try:
            import imp

            where = [imp.find_module("caffe")[1]]
        except Exception:
            where = []
    for d in where:
        pb2 = os.path.join(d, "proto", "caffe_pb2.py")
        if os.path.isfile(pb2):
            return pb2
    return None


def load_pb2(path):
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("caffedoc_probe_caffe_pb2", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except ImportError:
        if sys.version_info[0] >= 3:
            raise
        import imp

        imp.load_source("caffedoc_probe_caffe_pb2", path)


def import_caffe():
    try:
        import caffe  # noqa: F401

        result = {"ok": True}
    except BaseException as exc:
        result = failure(exc)
    result["caffe"] = module_file("caffe")
    result["extension"] = module_file("caffe._caffe")
    result["pb2"] = module_file("caffe.proto.caffe_pb2")
    result["numpy"] = getattr(sys.modules.get("numpy"), "__version__", None)
    emit("import", **result)
    if result["ok"]:
        emit("module", module="caffe", file=result["caffe"], version=version_of("caffe"))
    else:
        emit("error", module="caffe", error=one_line(result["error_type"], result["error"]))

    if result.get("pb2_failed"):
        # The generated code itself failed: that is the answer (loading it again would
        # only meet the half-registered caffe.proto in the descriptor pool).
        out = dict(result, path=result["pb2_failed"])
        emit("pb2", **out)
    elif result["pb2"] is None:
        path = locate_pb2()
        if path is not None:
            try:
                load_pb2(path)
                emit("pb2", ok=True, path=path)
            except BaseException as exc:
                out = failure(exc)
                out["path"] = path
                emit("pb2", **out)

    try:
        from google.protobuf.internal import api_implementation
        import google.protobuf

        emit(
            "protobuf",
            ok=True,
            version=getattr(google.protobuf, "__version__", None),
            implementation=api_implementation.Type(),
            file=google.protobuf.__file__,
        )
    except BaseException as exc:
        emit("protobuf", **failure(exc))
    sys.stderr.write(MARK + "caffe-done\n")
    sys.stderr.flush()


def one_line(kind, message):
    return (kind + ": " + message).replace("\n", " ")[:400]


def version_of(name):
    return getattr(sys.modules.get(name), "__version__", None)


def import_other(name):
    try:
        mod = __import__(name)
    except BaseException as exc:
        emit("error", module=name, error=one_line(type(exc).__name__, str(exc)))
        return
    emit("module", module=name, file=getattr(mod, "__file__", None), version=version_of(name))
    if name == "cv2":
        try:
            for line in mod.getBuildInformation().splitlines():
                if "protobuf" in line.lower():
                    emit("cv2-protobuf", line=" ".join(line.split()))
        except Exception:
            pass


def mapped():
    try:
        with open("/proc/self/maps") as fh:
            found = set(
                line.split()[-1] for line in fh if "libprotobuf" in line or "libopencv_core" in line
            )
    except (IOError, OSError):
        return
    emit("mapped", paths=sorted(found))


def main(order):
    absent = [name for name in order if not findable(name)] if len(order) > 1 else []
    for name in absent:
        emit("absent", module=name, error="ModuleNotFoundError: No module named '%s'" % name)
    todo = order if not absent else order[:1] if order[0] == "caffe" else []
    for name in todo:
        emit("start", module=name)
        if name == "caffe":
            import_caffe()
        else:
            import_other(name)
    if todo and not absent:
        mapped()
    emit("done")


main(sys.argv[1:] or ["caffe"])
