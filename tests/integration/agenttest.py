"""Integration-test harness: a real jabali-agent on a temp socket, driven
from this (separate) process over the wire protocol.

The daemon is started in the foreground with NOTIFY_SOCKET pointing at a
datagram socket of ours, and a test proceeds only once READY=1 arrives:
readiness is signalled, never slept for. Every process started here is
stopped and reaped, and the temp tree removed, when the test ends.

Output is TAP, so automake's tap-driver counts each case.
"""

import json
import os
import shutil
import signal
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

BUILDDIR = os.environ.get("JABALI_BUILDDIR", os.getcwd())
SRCDIR = os.environ.get("JABALI_SRCDIR", BUILDDIR)
AGENT = os.path.join(BUILDDIR, "jabali-agent")
CTL = os.path.join(BUILDDIR, "jabali-agentctl")
MODDIR = os.path.join(BUILDDIR, "tests", "modules", ".libs")
GOLDEN = os.path.join(SRCDIR, "tests", "golden")


def frame(payload):
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload, separators=(",", ":")).encode()
    elif isinstance(payload, str):
        payload = payload.encode()
    return struct.pack(">I", len(payload)) + payload


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(sock):
    hdr = recv_exact(sock, 4)
    if hdr is None:
        return None
    (n,) = struct.unpack(">I", hdr)
    body = recv_exact(sock, n)
    if body is None:
        raise EOFError("stream ended inside a response frame")
    return json.loads(body)


class Client:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.n = 0

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, action, params=None, **extra):
        self.n += 1
        rid = extra.pop("request_id", "r%d" % self.n)
        req = {"action": action, "request_id": rid}
        if params is not None:
            req["params"] = params
        req.update(extra)
        self.sock.sendall(frame(req))
        return rid

    def recv(self):
        return read_frame(self.sock)

    def call(self, action, params=None, **extra):
        rid = self.send(action, params, **extra)
        resp = self.recv()
        assert resp is not None, "connection closed instead of an answer"
        assert resp.get("request_id") == rid, "answer for %r, expected %r" % (resp.get("request_id"), rid)
        return resp

    def close(self):
        self.sock.close()


def default_config(root, **over):
    """A sandboxed config as a dict of top-level groups (rendered below)."""
    cfg = {
        "socket": {"path": os.path.join(root, "agent.sock"), "group": "", "mode": "0666"},
        "allow": {"users": ["root"], "groups": []},
        "modules": {
            "dir": MODDIR,
            "allow_insecure": False,
            "test": {
                "enabled": True,
                "workers": {"max": 2, "max_use": 500, "queue": 64},
                "settings": {"root": os.path.join(root, "files")},
            },
        },
        "audit": {"file": os.path.join(root, "audit.jsonl"), "fsync": "never", "journal": False},
        "apparmor": {"mode": "off"},
        "limits": {"read_timeout_ms": 2000},
        "runtime": {"dir": os.path.join(root, "run")},
        "log": {"level": "info"},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = deep_merge(cfg[k], v)
        else:
            cfg[k] = v
    return cfg


def deep_merge(a, b):
    out = dict(a)
    for k, v in b.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def render_value(v, indent):
    pad = "  " * indent
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%dL" % v if abs(v) > 2**31 - 1 else str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(render_value(x, indent) for x in v) + "]"
    if isinstance(v, dict):
        inner = "".join("%s  %s = %s;\n" % (pad, k, render_value(x, indent + 1)) for k, x in v.items())
        return "{\n" + inner + pad + "}"
    raise TypeError(v)


def render_config(cfg):
    return "".join("%s = %s;\n" % (k, render_value(v, 0)) for k, v in cfg.items())


class Agent:
    """A running daemon on a private sandbox tree."""

    def __init__(self, config=None, expect_ready=True, env=None, nofile=None, **over):
        self.nofile = nofile    # RLIMIT_NOFILE for the agent, to test its descriptor budget
        self.root = tempfile.mkdtemp(prefix="jabali-it-")
        os.makedirs(os.path.join(self.root, "files"))
        os.makedirs(os.path.join(self.root, "run"))
        os.chmod(self.root, 0o755)
        self.cfg = config if config is not None else default_config(self.root, **over)
        self.conf_path = os.path.join(self.root, "jabali-agent.conf")
        self.write_config(self.cfg)
        self.sock_path = self.cfg.get("socket", {}).get("path", os.path.join(self.root, "agent.sock"))
        self.audit_path = self.cfg.get("audit", {}).get("file")
        self.proc = None
        self.notify = None
        self.killed = False     # a test killed it on purpose: any exit status goes
        self.stderr_path = os.path.join(self.root, "stderr.log")
        self.start(expect_ready, env)

    def write_config(self, cfg, path=None):
        with open(path or self.conf_path, "w") as f:
            f.write(render_config(cfg))

    def start(self, expect_ready=True, env=None):
        npath = os.path.join(self.root, "notify.sock")
        if os.path.exists(npath):
            os.unlink(npath)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(npath)
        self.notify.settimeout(30)
        e = dict(os.environ)
        e["NOTIFY_SOCKET"] = npath
        if env:
            e.update(env)
        self.stderr = open(self.stderr_path, "ab")
        limit = self.nofile
        if limit and VALGRIND:
            limit += VALGRIND_RESERVED_FDS     # so that the agent sees the limit the test set

        def preexec():
            if limit:
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self.proc = subprocess.Popen(agent_command(self.root) + ["--foreground", "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr, env=e,
                                     preexec_fn=preexec)
        if expect_ready:
            self.wait_notify("READY=1")

    def wait_notify(self, what):
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            try:
                msg = self.notify.recv(4096).decode()
            except socket.timeout:
                break
            seen.append(msg)
            if what in msg.split("\n"):
                return seen
        raise AssertionError("no %s from the agent (got %r); stderr: %s" % (what, seen, self.log()))

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def client(self, **kw):
        return Client(self.sock_path, **kw)

    def call(self, action, params=None, **extra):
        c = self.client()
        try:
            return c.call(action, params, **extra)
        finally:
            c.close()

    def audit(self):
        with open(self.audit_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        """SIGTERM and reap; an agent that does not exit 0 fails the test
        (under the sanitizers that is how a leak or a memory error shows)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.killed = False
                raise AssertionError("the agent did not exit on SIGTERM; stderr: " + self.log())
        if self.proc and not self.killed and self.proc.returncode != 0:
            rc = self.proc.returncode
            self.proc = None
            raise AssertionError("the agent exited with status %d; stderr: %s%s" %
                                 (rc, self.log(), valgrind_errors(self.root) if VALGRIND else ""))
        if VALGRIND:
            # Workers run under valgrind too; their errors reach only their
            # logs, not the master's exit status.
            errors = valgrind_errors(self.root)
            if errors:
                self.proc = None
                raise AssertionError("valgrind reported errors:\n" + errors)
        if self.notify:
            self.notify.close()
            self.notify = None
        if getattr(self, "stderr", None):
            self.stderr.close()
            self.stderr = None

    def kill(self):
        self.killed = True
        self.proc.kill()
        self.proc.wait()

    def close(self):
        try:
            self.stop()
        finally:
            if self.notify:
                self.notify.close()
                self.notify = None
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def expect_error(resp, code):
    assert resp is not None, "no answer"
    assert resp.get("ok") is False, "expected %s, got %r" % (code, resp)
    assert resp.get("code") == code, "expected %s, got %r" % (code, resp)
    assert isinstance(resp.get("error"), str) and resp["error"], "no error message in %r" % resp
    return resp


def expect_golden(caller, module):
    """agent.describe of `module` (asked through `caller`, an Agent, a
    Client or anything with .call) must equal tests/golden/<module>.json,
    the module's wire contract. JABALI_UPDATE_GOLDEN=1 rewrites the file
    instead, for review in the diff. Returns the actions."""
    got = expect_ok(caller.call("agent.describe", {"module": module}))["actions"]
    path = os.path.join(GOLDEN, module + ".json")
    text = json.dumps(got, indent=2, sort_keys=False) + "\n"
    if os.environ.get("JABALI_UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        want = f.read()
    assert text == want, "agent.describe for %s drifted from %s; review and regenerate with " \
                         "JABALI_UPDATE_GOLDEN=1" % (module, path)
    return got


def expect_ok(resp):
    assert resp is not None, "no answer"
    assert resp.get("ok") is True, "expected ok, got %r" % resp
    assert isinstance(resp.get("result"), dict), "no result object in %r" % resp
    assert isinstance(resp["result"].get("changed"), bool), "result.changed missing in %r" % resp
    return resp["result"]


_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def run():
    """Runs every @test in order, printing TAP; exits non-zero on failure."""
    only = os.environ.get("JABALI_TEST_ONLY")
    failed = 0
    n = 0
    for fn in _tests:
        if only and only not in fn.__name__:
            continue
        n += 1
        try:
            fn()
        except Exception:
            failed += 1
            print("not ok %d - %s" % (n, fn.__name__))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
        else:
            print("ok %d - %s" % (n, fn.__name__))
        sys.stdout.flush()
    print("1..%d" % n)
    sys.exit(1 if failed else 0)


def suite(what, needs, ready=True, env=lambda: None):
    """The main() of a suite that runs real services: without root, or
    when `ready` is false (a tool missing), a single skipped case (TAP SKIP,
    never a failure) saying what it `needs`; otherwise every @test, and
    `env()` (the suite's environment, or None) closed whatever happened."""
    if os.geteuid() != 0 or not ready:
        print("ok 1 - %s # SKIP needs %s" % (what, needs))
        print("1..1")
        return
    try:
        run()
    finally:
        e = env()
        if e is not None:
            e.close()


def executable(*paths):
    return all(os.access(p, os.X_OK) for p in paths)


def free_port():
    """A port on 127.0.0.1 free for TCP and UDP at this moment, for a
    server a test starts next. The suites run side by side: a port the
    kernel hands out (bind to 0) can be taken, before the server binds it,
    as the source port of another suite's connection. So it is chosen at
    random below the kernel's ephemeral range, where no connection's
    source port comes from, and checked bindable both ways."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(10000, max(low, 10001))
        t, u = socket.socket(socket.AF_INET, socket.SOCK_STREAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", port))
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise AssertionError("no free port")


# ---- valgrind (JABALI_VALGRIND=1) ----

VALGRIND = os.environ.get("JABALI_VALGRIND") == "1"
VALGRIND_ARGS = ["valgrind", "-q", "--trace-children=yes",
                 # The agent and its workers, not the services' own tools it runs.
                 "--trace-children-skip=/usr/sbin/*,/bin/*,/usr/bin/*,/sbin/*", "--error-exitcode=99", "--leak-check=full",
                 "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"]
# valgrind keeps the top descriptors below RLIMIT_NOFILE for itself and
# shows its client a limit lowered by this many (measured with 3.19).
VALGRIND_RESERVED_FDS = 12


def agent_command(root):
    """argv prefix that starts the daemon. Under JABALI_VALGRIND=1 the
    libtool wrapper runs valgrind on the real binary with the build's
    library path; the workers (exec'd from the path /proc/self/exe names,
    which valgrind reports as the real binary) are traced too, and load
    the same way because the master passes LD_LIBRARY_PATH on. valgrind
    writes to files of its own, one per process, so that the agent's
    stderr stays what the tests expect."""
    if not VALGRIND:
        return [AGENT]
    return ([os.path.join(BUILDDIR, "libtool"), "--mode=execute"] + VALGRIND_ARGS +
            ["--log-file=" + os.path.join(root, "valgrind.%p.log"), AGENT])


def valgrind_errors(root):
    """The error reports in valgrind's logs under root: valgrind prefixes
    them with ==PID==, its own warnings (such as an unhandled syscall)
    with --PID--. A worker's errors reach only its log: the master sees
    them as a worker exit status of 99 at most."""
    import glob
    import re
    out = []
    for path in sorted(glob.glob(os.path.join(root, "valgrind.*.log"))):
        with open(path, errors="replace") as f:
            lines = [line.rstrip("\n") for line in f if re.match(r"==\d+== ", line)]
        if lines:
            out.append("%s:\n%s" % (os.path.basename(path), "\n".join(lines)))
    return "\n".join(out)


# ---- process inspection for the fault and load tests ----

def proc_status(pid, key):
    """A number field of /proc/PID/status (VmRSS is in KiB), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def vm_rss_kib(pid):
    return proc_status(pid, "VmRSS")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def child_pids(pid):
    """Direct children of pid (the workers of a master)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def wait_gone(pids, timeout=10):
    """Waits until every pid has exited: a pidfd turns readable then (a
    zombie nobody reaped yet counts as exited)."""
    import select
    deadline = time.monotonic() + timeout
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError("process %d still runs" % pid)
        finally:
            os.close(fd)


def raise_nofile(n):
    """Raises this process's soft RLIMIT_NOFILE to at least n (within the hard limit)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def warm_workers(a, n, module="test"):
    """Makes n workers of a module run at once: n overlapping test.sleeps
    need n of them. Descriptor counts compare equal only between states
    with the same number of workers (a worker that just reached max_use
    may still be on its way out: then try again)."""
    for _ in range(5):
        cs = [a.client() for _ in range(n)]
        for i, c in enumerate(cs):
            c.send(module + ".sleep", {"ms": 100}, request_id="warm%d" % i)
        for c in cs:
            r = c.recv()
            assert r and r.get("ok"), r
            c.close()
        h = a.call("agent.health")
        w = h["result"]["modules"][module]["workers"]
        if w["idle"] + w["busy"] == n and w["starting"] == 0:
            return
    raise AssertionError("could not get %d workers running: %r" % (n, h))


def agent_is_sanitized():
    """True when the agent under test is an AddressSanitizer build: its
    allocator keeps freed memory in quarantine, so RSS bounds mean nothing."""
    real = os.path.join(BUILDDIR, ".libs", "jabali-agent")
    try:
        out = subprocess.run(["ldd", real if os.path.exists(real) else AGENT], capture_output=True, text=True).stdout
    except OSError:
        return False
    return "libasan" in out
