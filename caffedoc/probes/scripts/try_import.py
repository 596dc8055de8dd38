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
#
# `--fork SECONDS caffe,cv2 cv2,caffe` runs every order at the cost of one import:
# this process imports once what the orders share (numpy, scipy, scikit-image, the
# bulk of `import caffe`; never protobuf, OpenCV or caffe, so each order stays the
# real one), then forks one child per order, each with its own pipes, process group
# and deadline (SECONDS from this process's start), which runs the steps above and
# exits as the interpreter would (a crash at exit still shows). Its own steps:
#   fork-start - the script runs (nothing at all: the interpreter never ran it)
#   preload    - a shared import begins: a crash after it names the module
#   fallback   - why it did not fork (a shared import failed, a thread already
#                runs, protobuf or OpenCV got loaded): the caller runs plain children
#   shared     - what was imported before the fork
#   child      - one order's ending: exit status or signal, timeout, its output
import gc
import json
import os
import select
import signal
import sys
import time
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


# What `import caffe` (pycaffe and its io module) imports before protobuf, OpenCV or
# caffe's own code: the slow, order-neutral part of both orders.
SHARED = ("numpy", "six", "scipy.ndimage", "skimage.io", "skimage.transform")
KEEP = 16 * 1024  # bytes kept of each child stream: its first and last KEEP
KILL_GRACE = 2.0  # after killing a child, how long its pipes may take to close


def preload():
    """Import SHARED (what is installed of it); (imported, why not to fork)."""
    if not findable("caffe"):
        return [], None  # nothing shared: an absent caffe is not imported by either order
    done = []
    for name in SHARED:
        if not findable(name.split(".")[0]):
            continue
        emit("preload", module=name)
        try:
            __import__(name)
        except BaseException as exc:
            return done, "importing %s raised %s" % (name, one_line(type(exc).__name__, str(exc)))
        done.append(name)
    return done, unsafe_to_fork()


def unsafe_to_fork():
    """Why a fork now would not give each order a process of its own, or None."""
    early = [m for m in ("caffe", "cv2", "google.protobuf") if m in sys.modules]
    if early:
        return "the shared imports loaded " + ", ".join(early)
    try:
        with open("/proc/self/maps") as fh:
            libs = set(ln.split()[-1] for ln in fh if "libprotobuf" in ln or "libopencv" in ln)
        threads = len(os.listdir("/proc/self/task"))
    except (IOError, OSError):
        return None
    if libs:
        return "the shared imports loaded " + ", ".join(sorted(libs))
    if threads > 1:
        return "%d threads run after the shared imports: a fork would copy one" % threads
    return None


class Child(object):
    def __init__(self, order, pid, out, err):
        self.order, self.pid = order, pid
        self.streams = {
            out: ["stdout", bytearray(), bytearray(), 0],
            err: ["stderr", bytearray(), bytearray(), 0],
        }
        self.output = {}
        self.status = None
        self.timed_out = False
        self.killed_at = None
        self.seconds = None

    def take(self, fd, data):
        s = self.streams[fd]
        room = KEEP - len(s[1])
        s[1] += data[:room]
        s[2] += data[room:] if room < len(data) else b""
        if len(s[2]) > 2 * KEEP:
            s[3] += len(s[2]) - KEEP
            del s[2][:-KEEP]

    def close(self, fd):
        os.close(fd)
        name, head, tail, dropped = self.streams.pop(fd)
        if len(tail) > KEEP:
            dropped += len(tail) - KEEP
            del tail[:-KEEP]
        text = bytes(
            head + (b"\n[caffedoc: %d bytes dropped here]\n" % dropped if dropped else b"") + tail
        )
        self.output[name] = text.decode("utf-8", "replace")
        self.output[name + "_dropped"] = dropped

    def kill(self, now):
        for how in (
            lambda: os.killpg(self.pid, signal.SIGKILL),
            lambda: os.kill(self.pid, signal.SIGKILL),
        ):
            try:
                how()
            except OSError:
                pass
        self.killed_at = now

    def report(self):
        status = self.status
        code = None
        if not self.timed_out and status is not None:
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        out = dict(self.output, order=self.order, returncode=code, timed_out=self.timed_out)
        out["seconds"] = self.seconds
        return out


def spawn(order, others):
    """Fork the child for `order`: None in the child, else its Child."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in [out_r, out_w, err_r, err_w] + [fd for c in others for fd in c.streams]:
            os.close(fd)
        return None
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    os.close(out_w)
    os.close(err_w)
    return Child(order, pid, out_r, err_r)


def watch(children, start, deadline):
    """Read every child's pipes and reap it, killing what outlives the deadline."""
    while True:
        now = time.time()
        for c in children:
            if c.status is None:
                pid, status = os.waitpid(c.pid, os.WNOHANG)
                if pid:
                    c.status, c.seconds = status, round(now - start, 3)
            if c.killed_at is None and now >= deadline and (c.status is None or c.streams):
                c.timed_out = c.status is None
                c.kill(now)
            if c.killed_at is not None and now >= c.killed_at + KILL_GRACE:
                for fd in list(c.streams):
                    c.close(fd)  # a grandchild holds the pipe: give up on it
        fds = [fd for c in children for fd in c.streams]
        waiting = [c for c in children if c.status is None]
        if not fds and not waiting:
            return
        if not fds:
            time.sleep(0.005)
            if any(c.killed_at is not None for c in waiting):
                for c in waiting:
                    c.status = os.waitpid(c.pid, 0)[1]
                    c.seconds = round(time.time() - start, 3)
            continue
        ready = select.select(fds, [], [], 0.25)[0]
        for fd in ready:
            owner = next(c for c in children if fd in c.streams)
            data = os.read(fd, 65536)
            if data:
                owner.take(fd, data)
            else:
                owner.close(fd)


def fork_orders(seconds, orders):
    """In a forked child: its order. In this process: None, once every child reported."""
    start = time.time()
    emit("fork-start")
    shared, why = preload()
    if why is not None or not hasattr(os, "fork"):
        emit("fallback", why=why or "os.fork is missing", shared=shared)
        return None
    emit("shared", modules=shared)
    sys.stdout.flush()
    sys.stderr.flush()
    if hasattr(gc, "freeze"):  # 3.7+: the children's collections then leave the shared
        gc.freeze()  # objects' pages alone, which halves their time (copy-on-write)
    children = []
    for order in orders:
        try:
            child = spawn(order, children)
        except OSError as exc:
            for c in children:
                c.kill(time.time())
                os.waitpid(c.pid, 0)
            emit("fallback", why="fork failed: %s" % exc, shared=shared)
            return None
        if child is None:
            return order
        children.append(child)
    watch(children, start, start + seconds)
    for c in children:
        emit("child", **c.report())
    return None


def run(argv):
    if argv[:1] == ["--fork"]:
        order = fork_orders(float(argv[1]), [o.split(",") for o in argv[2:]])
        if order is not None:
            main(order)
        else:  # the parent's own teardown (numpy, scipy…) tells nothing: skip its time
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    else:
        main(argv or ["caffe"])


run(sys.argv[1:])
