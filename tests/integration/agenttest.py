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

        def preexec():
            if limit:
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self.proc = subprocess.Popen([AGENT, "--foreground", "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr, env=e, preexec_fn=preexec)
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
            raise AssertionError("the agent exited with status %d; stderr: %s" % (rc, self.log()))
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
