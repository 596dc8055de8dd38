# Runs inside the interpreter being examined (Python 2.7 and 3.6+), as
# `python -c <this file's text>`, in its own process with a timeout: the real
# `import caffe` may abort or segfault, so each step prints its own JSON line
# (prefixed with MARK) and flushes before the next one starts. Steps:
#   import   - `import caffe`, as a user would
#   pb2      - whether caffe/proto/caffe_pb2.py loads (protobuf runtime vs
#              generated code): the import's own failure when it failed there,
#              else a load of the file on its own when the import never reached it
#   protobuf - the protobuf runtime's version and implementation (upb, cpp,
#              python), now that caffe has imported it
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


def main():
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


main()
