"""The core, end to end: a real daemon on a temp socket, driven over the
wire from this process (and from child processes with other credentials)."""

import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import threading
import time

from agenttest import (AGENT, CTL, MODDIR, Agent, Client, agent_is_sanitized, default_config, expect_error,
                       expect_golden, expect_ok, frame, read_frame, render_config, run, test)


@test
def ping_version_actions():
    with Agent() as a:
        r = expect_ok(a.call("agent.ping"))
        assert r == {"pong": True, "changed": False}, r
        v = expect_ok(a.call("agent.version"))
        assert v["modules"]["test"]["version"] == "1.0.0", v
        assert v["modules"]["test"]["state"] == "ready", v
        acts = expect_ok(a.call("agent.actions"))["actions"]
        assert acts == sorted(acts), acts
        for name in ("agent.ping", "agent.describe", "test.echo", "test.write"):
            assert name in acts, (name, acts)


@test
def response_envelope_exact_bytes():
    with Agent() as a:
        c = a.client()
        c.send_raw(frame('{"action":"agent.ping","request_id":"abc"}'))
        hdr = c.sock.recv(4)
        (n,) = struct.unpack(">I", hdr)
        body = c.sock.recv(n)
        assert body == b'{"request_id":"abc","ok":true,"result":{"pong":true,"changed":false}}', body
        c.close()


@test
def golden_contract():
    """agent.describe per module must match tests/golden/<module>.json."""
    with Agent() as a:
        for module in ("agent", "test"):
            expect_golden(a, module)
        one = expect_ok(a.call("agent.describe", {"action": "test.write"}))["actions"]
        assert len(one) == 1 and one[0]["name"] == "test.write" and one[0]["lock"] == "path", one
        expect_error(a.call("agent.describe", {"action": "no.such"}), "NOT_FOUND")
        expect_error(a.call("agent.describe", {"module": "nosuch"}), "NOT_FOUND")


@test
def worker_round_trip_and_params():
    with Agent() as a:
        r = expect_ok(a.call("test.echo", {"message": "héllo", "n": 5, "flag": True, "list": ["a", "b"]}))
        assert r["message"] == "héllo" and r["n"] == 5 and r["flag"] is True and r["list"] == ["a", "b"], r
        assert r["pid"] != a.proc.pid, "handler ran in the master"
        expect_error(a.call("test.echo", {"domain": "Example.com"}), "INVALID_PARAMS")
        expect_error(a.call("test.echo", {"domain": "a..b"}), "INVALID_PARAMS")
        expect_error(a.call("test.echo", {"bogus": 1}), "INVALID_PARAMS")
        expect_error(a.call("test.echo", {"n": "5"}), "INVALID_PARAMS")
        expect_error(a.call("test.echo", {"n": 1.5}), "INVALID_PARAMS")
        expect_error(a.call("test.echo", {"message": None}), "INVALID_PARAMS")
        expect_error(a.call("test.sleep", {}), "INVALID_PARAMS")
        e = expect_error(a.call("agent.ping", {"x": 1}), "INVALID_PARAMS")
        assert "takes no parameters" in e["error"], e


def raw_exchange(a, data, close_write=False):
    """Sends raw bytes; returns every answer until the agent closes."""
    c = a.client(timeout=10)
    c.send_raw(data)
    if close_write:
        c.sock.shutdown(socket.SHUT_WR)
    out = []
    while True:
        r = c.recv()
        if r is None:
            break
        out.append(r)
    c.close()
    return out


@test
def frame_errors_close_the_stream():
    with Agent(limits={"max_frame": 1024}) as a:
        # A zero-length frame.
        got = raw_exchange(a, struct.pack(">I", 0))
        assert [r["code"] for r in got] == ["INVALID_FRAME"], got
        # Above max_frame: refused from the header alone.
        got = raw_exchange(a, struct.pack(">I", 1025))
        assert [r["code"] for r in got] == ["FRAME_TOO_LARGE"], got
        # Exactly max_frame is fine (padding with spaces keeps it valid JSON).
        body = b'{"action":"agent.ping","request_id":"x"}'
        body += b" " * (1024 - len(body))
        c = a.client()
        c.send_raw(struct.pack(">I", len(body)) + body)
        expect_ok(c.recv())
        c.close()
        # The v1 newline dialect is recognised and refused.
        got = raw_exchange(a, b'{"command":"ping","id":"1"}\n')
        assert [r["code"] for r in got] == ["INVALID_FRAME"], got
        # A stream that ends inside a frame.
        got = raw_exchange(a, struct.pack(">I", 50) + b'{"action"', close_write=True)
        assert [r["code"] for r in got] == ["INVALID_FRAME"], got
        # Answers before a bad frame still arrive, in order.
        data = frame({"action": "agent.ping", "request_id": "a"}) + struct.pack(">I", 0)
        got = raw_exchange(a, data)
        assert [(r.get("request_id"), r["ok"]) for r in got] == [("a", True), (None, False)], got


@test
def half_sent_frame_times_out():
    with Agent(limits={"read_timeout_ms": 300}) as a:
        c = a.client(timeout=10)
        t0 = time.monotonic()
        c.send_raw(struct.pack(">I", 100) + b'{"act')
        r = c.recv()
        elapsed = time.monotonic() - t0
        expect_error(r, "INVALID_FRAME")
        assert "timed out" in r["error"], r
        assert 0.25 <= elapsed < 5, elapsed
        assert c.recv() is None, "connection left open after a poisoned stream"
        c.close()
        # Other clients were served meanwhile and still are.
        expect_ok(a.call("agent.ping"))


@test
def invalid_json_keeps_the_connection():
    cases = [
        b"{'action':'agent.ping'}",
        b'{"action":"agent.ping","request_id":"a","request_id":"b"}',
        b'{"action":"agent.ping","request_id":"a"} x',
        b'{"action":"agent.ping","request_id":"a","params":{"n":NaN}}',
        b'{"action":"agent.ping","request_id":"a\x01"}',
        b'{"action":"agent.ping","request_id":"\xc0\xaf"}',
        b'{"action":"agent.ping","request_id":"\\ud800"}',
        b'{"action":"agent.ping","request_id":"a\\u0000"}',
        b'{"action":"agent.ping","request_id":"a","params":{"n":9223372036854775808}}',
        b'[' * 100 + b']' * 100,
        b'{"action":"agent.ping","request_id":"a",}',
    ]
    with Agent() as a:
        c = a.client()
        for body in cases:
            c.send_raw(frame(body))
            r = expect_error(c.recv(), "INVALID_JSON")
            assert r["request_id"] is None, r
        expect_ok(c.call("agent.ping"))
        c.close()


@test
def invalid_requests():
    cases = [
        ({"request_id": "a"}, "INVALID_REQUEST"),
        ({"action": "agent.ping"}, "INVALID_REQUEST"),
        ([1, 2], "INVALID_REQUEST"),
        ({"action": "agent.ping", "request_id": "a", "extra": 1}, "INVALID_REQUEST"),
        ({"action": "agent.ping", "request_id": ""}, "INVALID_REQUEST"),
        ({"action": "agent.ping", "request_id": "x" * 129}, "INVALID_REQUEST"),
        ({"action": "agent.ping", "request_id": 7}, "INVALID_REQUEST"),
        ({"action": "AGENT.PING", "request_id": "a"}, "INVALID_REQUEST"),
        ({"action": "agent.ping", "request_id": "a", "params": []}, "INVALID_REQUEST"),
        ({"action": "agent.ping", "request_id": "a", "dry_run": "yes"}, "INVALID_REQUEST"),
        ({"action": "agent.ping", "request_id": "a", "timeout_ms": 0}, "INVALID_REQUEST"),
        ({"action": "agent.ping", "request_id": "a", "actor": "bob"}, "INVALID_REQUEST"),
        ({"action": "test.sleep", "request_id": "a", "params": {"ms": 1}, "timeout_ms": 600001}, "INVALID_REQUEST"),
        ({"action": "no.such.action", "request_id": "a"}, "UNKNOWN_ACTION"),
    ]
    with Agent() as a:
        c = a.client()
        for req, code in cases:
            c.send_raw(frame(req))
            r = expect_error(c.recv(), code)
            if isinstance(req, dict) and isinstance(req.get("request_id"), str) and 0 < len(req["request_id"]) <= 128:
                assert r["request_id"] == req["request_id"], (req, r)
        c.close()


@test
def pipelining_in_order():
    with Agent(limits={"max_pipeline": 8}) as a:
        c = a.client()
        reqs = []
        for i in range(60):
            action = ("test.sleep", {"ms": 20 if i % 7 == 0 else 0}) if i % 3 == 0 else ("agent.ping", None)
            req = {"action": action[0], "request_id": "p%d" % i}
            if action[1] is not None:
                req["params"] = action[1]
            reqs.append(req)
        c.send_raw(b"".join(frame(r) for r in reqs))
        ids = [c.recv()["request_id"] for _ in reqs]
        assert ids == ["p%d" % i for i in range(60)], ids
        c.close()


@test
def one_byte_at_a_time():
    with Agent() as a:
        c = a.client()
        data = frame({"action": "test.echo", "request_id": "slow", "params": {"message": "x"}})
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
        r = c.recv()
        assert r["request_id"] == "slow" and expect_ok(r)["message"] == "x", r
        c.close()


@test
def two_hundred_concurrent_connections():
    with Agent(limits={"max_connections": 256, "max_connections_per_uid": 256},
               modules={"test": {"workers": {"max": 2, "queue": 256}}}) as a:
        clients = [a.client() for _ in range(200)]
        for i, c in enumerate(clients):
            c.send("agent.ping" if i % 2 else "test.echo", None if i % 2 else {"n": i}, request_id="c%d" % i)
        for i, c in enumerate(clients):
            r = c.recv()
            assert r["request_id"] == "c%d" % i, r
            res = expect_ok(r)
            if i % 2 == 0:
                assert res["n"] == i, res
        for c in clients:
            c.close()
        h = expect_ok(a.call("agent.health"))
        assert h["connections"] == 1, h


@test
def connection_caps_refuse_cleanly():
    with Agent(limits={"max_connections": 4, "max_connections_per_uid": 3}) as a:
        held = [a.client() for _ in range(3)]
        for c in held:
            expect_ok(c.call("agent.ping"))
        extra = a.client()
        expect_error(extra.recv(), "BUSY")
        assert extra.recv() is None
        extra.close()
        held.pop().close()
        # The slot is free once the agent has seen the close: ask it.
        deadline = time.monotonic() + 10
        while expect_ok(held[0].call("agent.health"))["connections"] != 2:
            assert time.monotonic() < deadline, "the agent never noticed the close"
        c = a.client()
        expect_ok(c.call("agent.ping"))
        c.close()
        for c in held:
            c.close()


@test
def accept_pauses_at_the_descriptor_budget():
    """With 100 descriptors the agent gives clients 50 and keeps the rest in
    reserve: the 51st client waits in the backlog, unrefused, until another
    one leaves."""
    import select
    with Agent(nofile=100, limits={"max_connections": 256, "max_connections_per_uid": 256}) as a:
        held = [a.client() for _ in range(50)]
        for c in held:
            expect_ok(c.call("agent.ping"))
        late = a.client()
        late.send("agent.ping", request_id="late")
        ready, _, _ = select.select([late.sock], [], [], 0.5)
        assert not ready, "answered beyond the descriptor budget"
        held.pop().close()
        r = late.recv()
        assert r["request_id"] == "late" and r["ok"], r
        late.close()
        for c in held:
            c.close()
        assert "accepting paused" in a.log() and "accepting resumed" in a.log(), a.log()


def as_nobody(path, payload):
    """Connects from a child process running as nobody; returns the answer."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(path)
            try:
                s.sendall(frame(payload))
            except BrokenPipeError:
                pass    # refused before we wrote: the refusal is still there to read
            r = read_frame(s)
            os.write(wfd, json.dumps(r).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    return json.loads(data) if data else None


@test
def denied_peer_is_refused_and_audited():
    with Agent() as a:
        r = as_nobody(a.sock_path, {"action": "agent.ping", "request_id": "n1"})
        expect_error(r, "PERMISSION_DENIED")
        expect_ok(a.call("agent.ping"))
        refused = [e for e in a.audit() if e["event"] == "connection_refused"]
        assert refused and refused[-1]["peer"]["uid"] == 65534 and refused[-1]["result"] == "PERMISSION_DENIED", refused


@test
def allowed_by_group():
    with Agent(allow={"users": ["root"], "groups": ["nogroup"]}) as a:
        r = as_nobody(a.sock_path, {"action": "agent.ping", "request_id": "g1"})
        assert r and r.get("ok") is True, r


@test
def audit_records():
    with Agent() as a:
        expect_ok(a.call("test.echo", {"message": "m", "secret": "hunter2"},
                         actor={"user": "alice", "panel_id": 7}, request_id="aud-1"))
        expect_error(a.call("test.echo", {"secret": "hunter3", "bogus": True}, request_id="aud-2"), "INVALID_PARAMS")
        expect_error(a.call("test.crash", {"how": "fail"}, request_id="aud-3"), "TEST_FAILED")
        raw_exchange(a, struct.pack(">I", 0))
        text = open(a.audit_path).read()
        assert "hunter2" not in text and "hunter3" not in text, "a secret reached the audit log"
        recs = a.audit()
        by_id = {r.get("request_id"): r for r in recs if r.get("event") == "request"}
        r1 = by_id["aud-1"]
        assert r1["action"] == "test.echo" and r1["module"] == "test" and r1["result"] == "ok", r1
        assert r1["params"] == {"message": "m", "secret": "***"}, r1
        assert r1["actor"] == {"user": "alice", "panel_id": 7}, r1
        assert r1["peer"]["uid"] == 0 and r1["peer"]["pid"] > 0, r1
        assert r1["changed"] is False and r1["dry_run"] is False and r1["duration_us"] >= 0, r1
        assert r1["hat"] == "test" and r1["confinement"] == "nnp", r1
        assert by_id["aud-2"]["result"] == "INVALID_PARAMS", by_id["aud-2"]
        assert by_id["aud-3"]["result"] == "TEST_FAILED" and by_id["aud-3"]["error"] == "failed on purpose"
        assert any(r["event"] == "frame_rejected" and r["result"] == "INVALID_FRAME" for r in recs), recs
        keys = list(r1.keys())
        assert keys[:3] == ["time", "event", "request_id"], keys


@test
def fsync_always_answers_after_the_records():
    """audit.fsync = "always": answers wait for one group sync of their
    records; pipelined and concurrent requests all come back, each one
    audited by the time its answer arrives."""
    with Agent(audit={"fsync": "always"}) as a:
        clients = [a.client() for _ in range(16)]
        for i, c in enumerate(clients):
            for j in range(8):
                c.send("agent.ping" if j % 2 else "test.echo", None if j % 2 else {"n": j},
                       request_id="f%d-%d" % (i, j))
        for i, c in enumerate(clients):
            for j in range(8):
                r = c.recv()
                assert r["request_id"] == "f%d-%d" % (i, j) and r["ok"], r
        ids = {r.get("request_id") for r in a.audit()}
        missing = ["f%d-%d" % (i, j) for i in range(16) for j in range(8) if "f%d-%d" % (i, j) not in ids]
        assert not missing, missing
        for c in clients:
            c.close()


@test
def audit_failure_blocks_host_changes():
    """While audit records cannot be written, no host change is begun."""
    with Agent() as a:
        target = os.path.join(a.root, "files", "f.txt")
        expect_ok(a.call("test.write", {"path": "f.txt", "content": "v1"}))
        size = os.path.getsize(a.audit_path)
        subprocess.run(["prlimit", "--pid", str(a.proc.pid), "--fsize=%d:unlimited" % size], check=True)
        # This answer goes out (the work is done) but its record cannot be written.
        expect_ok(a.call("test.echo", {"n": 1}))
        e = expect_error(a.call("test.write", {"path": "f.txt", "content": "v2"}), "INTERNAL")
        assert "audit" in e["error"], e
        assert open(target).read() == "v1", "a host change went ahead unaudited"
        assert "audit record not written" in a.log(), a.log()
        subprocess.run(["prlimit", "--pid", str(a.proc.pid), "--fsize=unlimited"], check=True)
        expect_ok(a.call("agent.ping"))       # a record is written again
        expect_ok(a.call("test.write", {"path": "f.txt", "content": "v2"}))
        assert open(target).read() == "v2"
        assert a.audit()[-1]["action"] == "test.write", a.audit()[-1]


@test
def write_is_atomic_idempotent_and_dry_run():
    with Agent() as a:
        target = os.path.join(a.root, "files", "site", "index.html")
        os.makedirs(os.path.dirname(target))
        r = expect_ok(a.call("test.write", {"path": "site/index.html", "content": "v1"}))
        assert r["changed"] is True and open(target).read() == "v1"
        r = expect_ok(a.call("test.write", {"path": "site/index.html", "content": "v1"}))
        assert r["changed"] is False
        r = expect_ok(a.call("test.write", {"path": "site/index.html", "content": "v2"}, dry_run=True))
        assert r["changed"] is True and open(target).read() == "v1", "dry_run wrote"
        os.symlink("/etc", os.path.join(a.root, "files", "esc"))
        expect_error(a.call("test.write", {"path": "esc/x", "content": "no"}), "INVALID_PARAMS")
        expect_error(a.call("test.write", {"path": "../x", "content": "no"}), "INVALID_PARAMS")
        expect_error(a.call("test.write", {"path": "/etc/x", "content": "no"}), "INVALID_PARAMS")
        assert not os.path.exists("/etc/x")
        leftovers = [f for f in os.listdir(os.path.dirname(target)) if f != "index.html"]
        assert leftovers == [], leftovers


@test
def dry_run_refused_where_unsupported():
    with Agent() as a:
        # Read-only actions accept dry_run (nothing to apply either way).
        expect_ok(a.call("agent.ping", dry_run=True))


@test
def worker_crash_is_contained():
    with Agent() as a:
        # The caller is told how the worker failed: a signal, an exit
        # status, or an answer the master refused. AddressSanitizer may
        # turn a fatal signal into its report and exit status 1
        # (handle_abort, handle_segv).
        asan = ("exited with status 1",) if agent_is_sanitized() else ()
        whys = {"abort": ("was killed by signal %d" % signal.SIGABRT,) + asan,
                "segv": ("was killed by signal %d" % signal.SIGSEGV,) + asan,
                "exit": ("exited with status 7",),
                "bignum": ("sent invalid JSON",)}
        for how, why in whys.items():
            err = expect_error(a.call("test.crash", {"how": how}), "WORKER_CRASHED")
            assert err["error"].startswith(tuple("the test worker " + w for w in why)), err
            expect_ok(a.call("test.echo", {"n": 1}))
        h = expect_ok(a.call("agent.health"))["modules"]["test"]
        assert h["crashes"] == 4 and h["state"] == "ready", h
        crashed = [r for r in a.audit() if r.get("action") == "test.crash"]
        assert [r["result"] for r in crashed] == ["WORKER_CRASHED"] * 4, crashed


@test
def deadline_kills_and_replaces():
    with Agent() as a:
        t0 = time.monotonic()
        r = a.call("test.sleep", {"ms": 5000}, timeout_ms=300)
        elapsed = time.monotonic() - t0
        expect_error(r, "TIMEOUT")
        assert elapsed < 2.0, elapsed
        expect_ok(a.call("test.sleep", {"ms": 1}))
        h = expect_ok(a.call("agent.health"))["modules"]["test"]
        assert h["timeouts"] == 1, h


@test
def enforce_without_apparmor_is_sandbox_unavailable():
    """This kernel has no AppArmor: enforce mode must fail closed."""
    with Agent(apparmor={"mode": "enforce"}) as a:
        expect_error(a.call("test.echo", {}), "SANDBOX_UNAVAILABLE")
        expect_ok(a.call("agent.ping"))
        h = expect_ok(a.call("agent.health"))
        assert h["status"] == "degraded" and h["modules"]["test"]["code"] == "SANDBOX_UNAVAILABLE", h


@test
def optional_module_missing_is_unavailable():
    with Agent(modules={"ghost": {"enabled": True, "optional": True}}) as a:
        expect_error(a.call("ghost.anything"), "MODULE_UNAVAILABLE")
        h = expect_ok(a.call("agent.health"))
        assert h["modules"]["ghost"]["state"] == "unavailable", h
        expect_ok(a.call("test.echo", {}))


@test
def busy_when_queue_full():
    with Agent(modules={"test": {"workers": {"max": 1, "queue": 2}}}) as a:
        c = a.client()
        for i in range(6):
            c.send("test.sleep", {"ms": 300}, request_id="b%d" % i)
        codes = [c.recv() for _ in range(6)]
        oks = [r for r in codes if r["ok"]]
        busy = [r for r in codes if not r["ok"]]
        assert busy and all(r["code"] == "BUSY" for r in busy), codes
        assert len(oks) >= 2, codes
        c.close()


@test
def runtime_dir_is_made_at_start():
    with Agent() as a:
        run = a.cfg["runtime"]["dir"]
        a.stop()
        shutil.rmtree(run)      # made by the harness: the agent must make it again
        a.start()
        st, lk = os.lstat(run), os.lstat(os.path.join(run, "locks"))
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0, st
        assert stat.S_ISDIR(lk.st_mode) and stat.S_IMODE(lk.st_mode) == 0o700 and lk.st_uid == 0, lk
        expect_ok(a.call("agent.ping"))


@test
def refuses_to_start():
    import tempfile
    root = tempfile.mkdtemp(prefix="jabali-it-")
    try:
        def start(cfg):
            path = os.path.join(root, "c.conf")
            with open(path, "w") as f:
                f.write(render_config(cfg))
            return subprocess.run([AGENT, "--foreground", "-c", path], capture_output=True, text=True, timeout=30)

        base = default_config(root)
        r = start(dict(base, allow={"users": ["no-such-user-xyz"], "groups": []}))
        assert r.returncode != 0 and "allow list is empty" in r.stderr, r
        bad = os.path.join(root, "mods")
        os.makedirs(bad)
        os.chmod(bad, 0o755)
        so = os.path.join(bad, "test.so")
        with open(os.path.join(MODDIR, "test.so"), "rb") as src, open(so, "wb") as dst:
            dst.write(src.read())
        os.chmod(so, 0o666)
        r = start(dict(base, modules=dict(base["modules"], dir=bad)))
        assert r.returncode != 0 and "writable by group or others" in r.stderr, r
        os.chmod(so, 0o644)
        os.chown(so, 65534, 65534)
        r = start(dict(base, modules=dict(base["modules"], dir=bad)))
        assert r.returncode != 0 and "not root" in r.stderr, r
        r = start(dict(base, modules=dict(base["modules"], test=dict(base["modules"]["test"],
                                                                        settings={"nope": 1}))))
        assert r.returncode != 0 and "nope" in r.stderr, r
        # runtime.dir (and its locks/) must be the agent's own, written by
        # it alone: a world-writable one, or a symlink, is refused.
        rt = os.path.join(root, "rt")
        os.makedirs(rt)
        os.chmod(rt, 0o777)
        r = start(dict(base, runtime={"dir": rt}))
        assert r.returncode != 0 and "runtime.dir" in r.stderr and "writable by it alone" in r.stderr, r
        os.rmdir(rt)
        os.symlink(root, rt)
        r = start(dict(base, runtime={"dir": rt}))
        assert r.returncode != 0 and "runtime.dir" in r.stderr, r
        os.unlink(rt)
        os.makedirs(os.path.join(rt, "locks"), mode=0o755)
        os.chmod(os.path.join(rt, "locks"), 0o775)
        r = start(dict(base, runtime={"dir": rt}))
        assert r.returncode != 0 and "locks" in r.stderr, r
    finally:
        import shutil
        shutil.rmtree(root, ignore_errors=True)


@test
def check_config():
    with Agent() as a:
        r = subprocess.run([AGENT, "--check-config", "-c", a.conf_path], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "configuration OK" in r.stdout, r
        broken = os.path.join(a.root, "broken.conf")
        with open(broken, "w") as f:
            f.write(render_config(a.cfg) + "limits = { max_frame = 10000000000; };\n")
        r = subprocess.run([AGENT, "--check-config", "-c", broken], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "broken.conf:" in r.stderr, r
        with open(broken, "w") as f:
            f.write(render_config(a.cfg).replace("socket = {", "sokcet = {"))
        r = subprocess.run([AGENT, "--check-config", "-c", broken], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "sokcet" in r.stderr, r


@test
def stale_socket_is_replaced_live_one_is_not():
    with Agent() as a:
        # A second agent on the same path must not steal a live socket.
        r = subprocess.run([AGENT, "--foreground", "-c", a.conf_path], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "another process answers" in r.stderr, r
        expect_ok(a.call("agent.ping"))
        a.kill()
        assert os.path.exists(a.sock_path), "test premise: a killed agent leaves its socket file"
        a.stop()
        a.killed = False
        a.start()
        expect_ok(a.call("agent.ping"))


@test
def sighup_reloads_or_keeps():
    with Agent() as a:
        expect_ok(a.call("test.echo", {}))
        # A broken config is refused and the running one kept.
        good = render_config(a.cfg)
        with open(a.conf_path, "w") as f:
            f.write(good + "bogus = 1;\n")
        a.signal(signal.SIGHUP)
        a.wait_notify("READY=1")
        expect_ok(a.call("test.echo", {}))
        # Disabling the module removes its actions.
        cfg = dict(a.cfg)
        cfg["modules"] = dict(cfg["modules"], test=dict(cfg["modules"]["test"], enabled=False))
        a.write_config(cfg)
        a.signal(signal.SIGHUP)
        a.wait_notify("READY=1")
        expect_error(a.call("test.echo", {}), "UNKNOWN_ACTION")
        a.write_config(a.cfg)
        a.signal(signal.SIGHUP)
        a.wait_notify("READY=1")
        expect_ok(a.call("test.echo", {}))


@test
def sigterm_drains_in_flight():
    with Agent() as a:
        c = a.client()
        c.send("test.sleep", {"ms": 400}, request_id="drain")
        # The request is in a worker once the pool reports it busy.
        deadline = time.monotonic() + 10
        while expect_ok(a.call("agent.health"))["modules"]["test"]["workers"]["busy"] == 0:
            assert time.monotonic() < deadline
        a.signal(signal.SIGTERM)
        r = c.recv()
        assert r["request_id"] == "drain" and expect_ok(r)["slept_ms"] == 400, r
        assert a.wait() == 0
        assert not os.path.exists(a.sock_path), "socket file left behind"


@test
def ctl_cli():
    with Agent() as a:
        env = dict(os.environ, JABALI_AGENT_SOCKET=a.sock_path)
        r = subprocess.run([CTL, "ping"], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0 and '"pong":true' in r.stdout.replace(" ", ""), r
        r = subprocess.run([CTL, "call", "test.echo", "n=3", "message=hi"], capture_output=True, text=True,
                           env=env, timeout=30)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and out["result"]["n"] == 3 and out["result"]["message"] == "hi", r
        r = subprocess.run([CTL, "call", "test.echo", "n=x"], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 1 and "INVALID_PARAMS" in (r.stdout + r.stderr), r
        r = subprocess.run([CTL, "actions"], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0 and "test.echo" in r.stdout.split(), r
        r = subprocess.run([CTL, "--socket", a.sock_path + ".none", "ping"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 3, r
        r = subprocess.run([CTL, "frobnicate"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, r


if __name__ == "__main__":
    run()
