#!/usr/bin/env python3
"""The php module against a real php-fpm.

One php-fpm runs in the foreground (-F) with a private main configuration
that includes the module's pool directory and defines a base pool of its
own (php-fpm refuses a configuration without any pool). The agent's
reload.command reloads it with SIGUSR2 (and counts the reloads in a file).
A throw-away Linux account owns the pool. What a pool does is checked from
outside: its socket, and a FastCGI request spoken through it by this
process, whose script prints the uid it runs as and its open_basedir.
Everything started here is stopped, and the account removed, whatever
happens.

Needs php-fpm (Debian: php8.2-fpm); without it the test reports a single
skipped case (TAP SKIP), never a failure.

Nothing here sleeps to synchronise. php-fpm is started with NOTIFY_SOCKET
pointing at a datagram socket of ours: it sends "READY=1 ... STATUS=Ready
to handle connections" when its master is ready, at start and again after
each SIGUSR2 re-exec. A change that reloads php-fpm is made through
Env.apply(), which waits for the agent's reloader for the unit to be idle
with one more reload done, then for that notification. "No reload" is the
unit's `requested` count unchanged after the call.
"""

import grp
import json
import os
import pwd
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agenttest import (Agent, BUILDDIR, GOLDEN, SRCDIR, expect_error, expect_ok, run,  # noqa: E402
                       test)

VERSION = "8.2"
FPM = "/usr/sbin/php-fpm" + VERSION
TEMPLATES = os.path.join(SRCDIR, "modules", "php", "templates")
WINDOW_MS = 50
UNIT = "php%s-fpm.service" % VERSION    # the module's "unit" setting, left at its default
WAIT_S = 60


def module_so():
    p = os.path.join(BUILDDIR, "modules", "php", ".libs", "php.so")
    if os.path.exists(p):
        return p
    return os.environ.get("JABALI_PHP_SO", p)


# ---- a minimal FastCGI client (responder role, one request) ----

FCGI_BEGIN, FCGI_END, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 1, 3, 4, 5, 6, 7


def fcgi_record(rtype, content, rid=1):
    return struct.pack("!BBHHBx", 1, rtype, rid, len(content), 0) + content


def fcgi_len(n):
    return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)


def fcgi_request(sock_path, script, timeout=30):
    """Runs `script` through the pool at sock_path; returns (stdout, stderr)
    with the CGI headers stripped from stdout."""
    params = {
        "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/" + os.path.basename(script),
        "REQUEST_METHOD": "GET", "REQUEST_URI": "/" + os.path.basename(script), "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_NAME": "localhost",
        "REMOTE_ADDR": "127.0.0.1",
    }
    body = b"".join(fcgi_len(len(k)) + fcgi_len(len(v)) + k.encode() + v.encode() for k, v in params.items())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(fcgi_record(FCGI_BEGIN, struct.pack("!HB5x", 1, 0)) + fcgi_record(FCGI_PARAMS, body) +
                  fcgi_record(FCGI_PARAMS, b"") + fcgi_record(FCGI_STDIN, b""))
        buf, out, err = b"", b"", b""
        while True:
            chunk = s.recv(65536)
            assert chunk, "php-fpm closed the connection before FCGI_END_REQUEST"
            buf += chunk
            while len(buf) >= 8:
                _, rtype, _, clen, plen = struct.unpack("!BBHHB", buf[:7])
                if len(buf) < 8 + clen + plen:
                    break
                content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
                if rtype == FCGI_STDOUT:
                    out += content
                elif rtype == FCGI_STDERR:
                    err += content
                elif rtype == FCGI_END:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    return rest, err
    finally:
        s.close()


ID_SCRIPT = """<?php
echo posix_geteuid(), "|", ini_get("open_basedir"), "|", ini_get("memory_limit"), "|",
     @file_get_contents("/etc/hostname") === false ? "denied" : "read", "\\n";
"""


class Env:
    """php-fpm + agent + a test account, torn down by close()."""

    def __init__(self):
        self.fpm = None
        self.agent = None
        self.user = None
        self.notify = None
        self.t = tempfile.mkdtemp(prefix="jabali-php-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def setup(self):
        t = self.t
        os.chmod(t, 0o711)
        self.f = os.path.join(t, "fpm")
        for d in ("pool.d", "run", "log"):
            os.makedirs(os.path.join(self.f, d))
        for d in ("locks", "override", "mods", "home"):
            os.makedirs(os.path.join(t, d))
        os.chmod(os.path.join(t, "home"), 0o711)
        self.pool_dir = os.path.join(self.f, "pool.d")
        self.override = os.path.join(t, "override")
        self.pidfile = os.path.join(self.f, "run", "php-fpm.pid")
        self.conf = os.path.join(self.f, "php-fpm.conf")
        with open(self.conf, "w") as f:
            f.write("""[global]
pid = {f}/run/php-fpm.pid
error_log = {f}/log/php-fpm.log
daemonize = no
include = {f}/pool.d/*.conf

[jabali-test-base]
user = www-data
group = www-data
listen = {f}/run/base.sock
pm = ondemand
pm.max_children = 1
""".format(f=self.f))

        self.user = "jbphp%d" % (os.getpid() % 100000)
        self.home = os.path.join(t, "home", self.user)
        subprocess.run(["useradd", "-m", "-d", self.home, "-s", "/usr/sbin/nologin", "-U", self.user],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(self.home, 0o711)
        self.uid = pwd.getpwnam(self.user).pw_uid
        self.www = pwd.getpwnam("www-data").pw_uid
        self.www_gid = grp.getgrnam("www-data").gr_gid
        os.makedirs(os.path.join(self.home, "public_html"))
        self.script = os.path.join(self.home, "public_html", "id.php")
        with open(self.script, "w") as f:
            f.write(ID_SCRIPT)
        for p in (os.path.join(self.home, "public_html"), self.script):
            os.chown(p, self.uid, self.uid)

        # php-fpm tells this socket when its master is ready (sd_notify).
        self.notify_path = os.path.join(t, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        with open(os.path.join(self.f, "log", "stderr.log"), "wb") as err:
            self.fpm = subprocess.Popen([FPM, "-F", "-y", self.conf], stdin=subprocess.DEVNULL, stderr=err,
                                        env=dict(os.environ, NOTIFY_SOCKET=self.notify_path))
        self.wait_ready()

        mods = os.path.join(t, "mods")
        shutil.copy(module_so(), os.path.join(mods, "php.so"))
        os.chmod(os.path.join(mods, "php.so"), 0o644)
        os.chmod(mods, 0o755)
        self.reloads = os.path.join(t, "reloads")
        open(self.reloads, "w").close()
        reload_cmd = ["/bin/sh", "-c", "echo r >> '%s' && exec kill -USR2 \"$(cat '%s')\"" % (
            self.reloads, self.pidfile)]
        self.settings = {
            "fpm_conf": self.conf,
            "pool_dir": self.pool_dir,
            "php_socket_pattern": os.path.join(self.f, "run", "php{version}-fpm-{user}.sock"),
            "template_dir": TEMPLATES,
            "template_override_dir": self.override,
            "lock_dir": os.path.join(t, "locks"),
        }
        self.socket = os.path.join(self.f, "run", "php%s-fpm-%s.sock" % (VERSION, self.user))
        self.agent = Agent(modules={"dir": mods, "test": None,
                                    "php": {"enabled": True, "settings": self.settings}},
                           reload={"command": reload_cmd, "window_ms": WINDOW_MS})

    # ---- helpers ----

    def wait_ready(self):
        """The next "ready to handle connections" of the php-fpm master
        (its periodic heartbeats carry other STATUS lines)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "php-fpm never became ready; %s" % self.fpm_log()
            r, _, _ = select.select([self.notify], [], [], left)
            if r and b"STATUS=Ready to handle connections" in self.notify.recv(4096):
                return
            assert self.fpm.poll() is None, "php-fpm exited; %s" % self.fpm_log()

    def drain_notify(self):
        while select.select([self.notify], [], [], 0)[0]:
            self.notify.recv(4096)

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def reload_unit(self, client=None):
        resp = client.call("agent.health") if client else self.call("agent.health")
        units = expect_ok(resp)["reloads"]
        return units.get(UNIT, {"state": "idle", "requested": 0, "reloads": 0, "failed": 0})

    def settle(self):
        deadline = time.monotonic() + WAIT_S
        c = self.agent.client()
        try:
            while True:
                u = self.reload_unit(c)
                if u["state"] == "idle":
                    return u
                assert time.monotonic() < deadline, "the reload of %s never ended: %r" % (UNIT, u)
        finally:
            c.close()

    def expect_no_reload(self, before, n0):
        u = self.reload_unit()
        assert u["requested"] == before["requested"] and u["state"] == "idle", (before, u)
        assert self.reload_count() == n0, "the reload command ran"

    def apply(self, action, params=None, **extra):
        """A call that may reload php-fpm, answered once php-fpm's master
        has come back ready after the reload."""
        before = self.settle()
        self.drain_notify()
        resp = self.call(action, params, **extra)
        if self.reload_unit()["requested"] > before["requested"]:
            u = self.settle()
            assert u["reloads"] >= before["reloads"] + 1, (before, u)
            assert u["failed"] == before["failed"], "the reload failed: %r" % u
            self.wait_ready()
        return resp

    def reload_count(self):
        with open(self.reloads) as f:
            return len(f.read().split())

    def fpm_log(self):
        out = []
        for name in ("stderr.log", "php-fpm.log"):
            try:
                with open(os.path.join(self.f, "log", name), errors="replace") as f:
                    out.append("%s:\n%s" % (name, f.read()[-3000:]))
            except OSError as e:
                out.append(str(e))
        return "\n".join(out)

    def pool(self, **kw):
        p = {"user": self.user, "user_id": self.uid, "php_version": VERSION}
        p.update(kw)
        return p

    def run_id(self):
        """uid|open_basedir|memory_limit|denied-or-read, from inside the pool."""
        out, err = fcgi_request(self.socket, self.script)
        assert not err, err
        return out.decode().strip().split("|")

    def snapshot(self):
        out = {}
        for top in (self.pool_dir, self.home):
            for dirpath, dirs, files in os.walk(top):
                for n in dirs + files:
                    p = os.path.join(dirpath, n)
                    st = os.lstat(p)
                    data = None
                    if stat.S_ISREG(st.st_mode):
                        with open(p, "rb") as f:
                            data = f.read()
                    elif stat.S_ISLNK(st.st_mode):
                        data = os.readlink(p)
                    out[p] = (st.st_ino, st.st_mtime_ns, st.st_mode, data)
        return out

    def close(self):
        try:
            if self.agent:
                self.agent.close()
        finally:
            try:
                if self.fpm and self.fpm.poll() is None:
                    self.fpm.send_signal(signal.SIGTERM)
                    try:
                        self.fpm.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        self.fpm.kill()
                        self.fpm.wait()
            finally:
                if self.notify:
                    self.notify.close()
                if self.user:
                    subprocess.run(["userdel", "-r", self.user], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                shutil.rmtree(self.t, ignore_errors=True)


ENV = None


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


# ---- the cases, in order: later ones build on earlier ones ----


@test
def golden_contract():
    e = env()
    got = expect_ok(e.call("agent.describe", {"module": "php"}))["actions"]
    path = os.path.join(GOLDEN, "php.json")
    text = json.dumps(got, indent=2, sort_keys=False) + "\n"
    if os.environ.get("JABALI_UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        want = f.read()
    assert text == want, "agent.describe for php drifted from %s; review and regenerate with " \
                         "JABALI_UPDATE_GOLDEN=1" % path


@test
def create_runs_php_as_the_user():
    e = env()
    n0 = e.reload_count()
    r = expect_ok(e.apply("php.pool.create", e.pool()))
    assert r["changed"] is True, r
    assert r["config_path"] == os.path.join(e.pool_dir, e.user + ".conf"), r
    assert r["socket"] == e.socket, r
    assert r["plan"] == ["create temporary directory", "write pool", "reload php-fpm"], r
    assert e.reload_count() == n0 + 1, "no reload after a new pool"
    st = os.lstat(e.socket)
    assert stat.S_ISSOCK(st.st_mode) and st.st_uid == e.www and st.st_gid == e.www_gid, st
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    tmp = os.path.join(e.home, "tmp")
    st = os.lstat(tmp)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == e.uid and stat.S_IMODE(st.st_mode) == 0o700, st
    uid, basedir, mem, etc = e.run_id()
    assert uid == str(e.uid), (uid, e.uid)
    assert basedir == "%s/:%s/" % (e.home, tmp), basedir
    assert mem == "256M" and etc == "denied", (mem, etc)


@test
def second_identical_apply_changes_nothing():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("php.pool.create", e.pool()))
    assert r["changed"] is False and r["plan"] == [], r
    assert e.snapshot() == before, "an identical apply touched files"
    e.expect_no_reload(u0, n0)


@test
def dry_run_reports_and_writes_nothing():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("php.pool.update", e.pool(memory_limit_mb=128), dry_run=True))
    assert r["changed"] is True and r["plan"] == ["rewrite pool", "reload php-fpm"], r
    assert "php_admin_value[memory_limit] = 128M\n" in r["config"], r
    r = expect_ok(e.call("php.pool.delete", {"user": e.user, "php_version": VERSION}, dry_run=True))
    assert r["changed"] is True and r["plan"] == ["remove pool", "reload php-fpm"], r
    assert e.snapshot() == before, "a dry run wrote something"
    e.expect_no_reload(u0, n0)


@test
def update_changes_what_is_served():
    e = env()
    r = expect_ok(e.apply("php.pool.update", e.pool(memory_limit_mb=128, pm="dynamic", max_children=4,
                                                    start_servers=2, min_spare_servers=1, max_spare_servers=3)))
    assert r["changed"] is True, r
    uid, _, mem, _ = e.run_id()
    assert uid == str(e.uid) and mem == "128M", (uid, mem)
    with open(os.path.join(e.pool_dir, e.user + ".conf")) as f:
        text = f.read()
    assert "pm = dynamic\n" in text and "pm.start_servers = 2\n" in text, text
    g = expect_ok(e.call("php.pool.get", {"user": e.user, "php_version": VERSION}))
    assert g["params"]["memory_limit_mb"] == 128 and g["params"]["pm"] == "dynamic", g
    assert g["socket"] == e.socket, g


@test
def hostile_params_are_refused_before_anything_is_written():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    cases = [
        ("user", "x\ny"), ("user", "a;b"), ("user", 'a"b'), ("user", "${HOME}"), ("user", "../etc"),
        ("user", "root"), ("user", "nosuchuser%d" % os.getpid()), ("user", ""),
        ("user_id", e.uid + 1), ("user_id", -1),
        ("php_version", "8.2;x"), ("php_version", "8.2\n"), ("php_version", "${x}"), ("php_version", "7.4"),
        ("php_version", "../8.2"), ("pm", "bogus"), ("pm", "static\n"), ("max_children", 0),
        ("max_children", 1001), ("memory_limit_mb", "128M;"), ("memory_limit_mb", 1 << 40),
        ("upload_max_mb", 0), ("max_requests", -1), ("extra", "x"),
    ]
    for action in ("php.pool.create", "php.pool.update"):
        for key, value in cases:
            p = e.pool()
            if key == "user" and value == "root":
                p["user_id"] = 0
            p[key] = value
            expect_error(e.call(action, p), "INVALID_PARAMS")
        expect_error(e.call(action, e.pool(pm="dynamic", start_servers=5, max_spare_servers=3)), "INVALID_PARAMS")
    for key, value in (("user", "a/b"), ("user", "..\n"), ("php_version", "8.2/x")):
        p = {"user": e.user, "php_version": VERSION}
        p[key] = value
        expect_error(e.call("php.pool.delete", p), "INVALID_PARAMS")
        expect_error(e.call("php.pool.get", p), "INVALID_PARAMS")
    # The pool's temporary directory replaced by a symlink out of the home.
    tmp = os.path.join(e.home, "tmp")
    os.rename(tmp, tmp + ".real")
    os.symlink("/etc", tmp)
    try:
        expect_error(e.call("php.pool.update", e.pool(memory_limit_mb=64)), "INVALID_PARAMS")
    finally:
        os.unlink(tmp)
        os.rename(tmp + ".real", tmp)
    assert e.snapshot() == before, "a refused request wrote something"
    e.expect_no_reload(u0, n0)


def write_override(e, text):
    with open(os.path.join(e.override, "pool.conf.tpl"), "w") as f:
        f.write(text)


@test
def broken_template_keeps_the_old_pool():
    e = env()
    with open(os.path.join(TEMPLATES, "pool.conf.tpl")) as f:
        good = f.read()
    try:
        u0, n0 = e.settle(), e.reload_count()
        before = e.snapshot()
        # Refused by php-fpm -t: written, tested, put back exactly.
        write_override(e, good.replace("chdir = /", "chdir = /\nbogus_entry = 1"))
        r = expect_error(e.call("php.pool.update", e.pool(memory_limit_mb=96)), "CONFIG_INVALID")
        assert "bogus_entry" in r["error"], r
        # A template that does not parse: nothing is written.
        write_override(e, good + "{{#unclosed}}\n")
        expect_error(e.call("php.pool.update", e.pool(memory_limit_mb=96)), "CONFIG_INVALID")
        # A template that names a value the module does not provide.
        write_override(e, good.replace("chdir = /", "chdir = {{no_such_value}}"))
        expect_error(e.call("php.pool.update", e.pool(memory_limit_mb=96)), "CONFIG_INVALID")
        after = e.snapshot()
        for path, (ino, mtime, mode, data) in before.items():
            assert path in after and after[path][2:] == (mode, data), "%s not restored" % path
        assert set(after) == set(before), set(after) ^ set(before)
        e.expect_no_reload(u0, n0)
        uid, _, mem, _ = e.run_id()
        assert uid == str(e.uid) and mem == "128M", "the old pool is not served: %r" % ((uid, mem),)
        expect_ok(e.call("php.test"))
    finally:
        os.unlink(os.path.join(e.override, "pool.conf.tpl"))


@test
def test_and_reload():
    e = env()
    r = expect_ok(e.call("php.test"))
    assert r["valid"] is True and r["changed"] is False, r
    e.settle()
    n0 = e.reload_count()
    r = expect_ok(e.apply("php.reload"))
    assert r["reloaded"] is True, r
    assert e.reload_count() == n0 + 1, "php.reload did not wait for its reload"
    assert e.run_id()[0] == str(e.uid)


@test
def list_get_and_foreign_files():
    e = env()
    r = expect_ok(e.call("php.pool.list"))
    assert [(p["user"], p["php_version"]) for p in r["pools"]] == [(e.user, VERSION)], r
    expect_error(e.call("php.pool.get", {"user": "nosuchpool", "php_version": VERSION}), "NOT_FOUND")
    foreign = os.path.join(e.pool_dir, "foreign.conf")
    with open(foreign, "w") as f:
        f.write("; written by hand\n")
    try:
        assert len(expect_ok(e.call("php.pool.list"))["pools"]) == 1
        expect_error(e.call("php.pool.get", {"user": "foreign", "php_version": VERSION}), "CONFLICT")
        expect_error(e.call("php.pool.delete", {"user": "foreign", "php_version": VERSION}), "CONFLICT")
        with open(foreign) as f:
            assert f.read() == "; written by hand\n"
    finally:
        os.unlink(foreign)


@test
def delete_removes_the_pool():
    e = env()
    r = expect_ok(e.apply("php.pool.delete", {"user": e.user, "php_version": VERSION}))
    assert r["changed"] is True, r
    assert not os.path.lexists(os.path.join(e.pool_dir, e.user + ".conf"))
    assert not os.path.lexists(e.socket), "php-fpm kept the removed pool's socket"
    assert os.path.isdir(os.path.join(e.home, "tmp")), "the account's files went with the pool"
    u0, n0 = e.settle(), e.reload_count()
    r = expect_ok(e.call("php.pool.delete", {"user": e.user, "php_version": VERSION}))
    assert r["changed"] is False, r
    expect_error(e.call("php.pool.update", e.pool()), "NOT_FOUND")
    e.expect_no_reload(u0, n0)
    assert expect_ok(e.call("php.pool.list"))["pools"] == []


def main():
    if not os.access(FPM, os.X_OK) or os.geteuid() != 0:
        print("ok 1 - php module # SKIP needs root and %s (Debian package php%s-fpm)" % (FPM, VERSION))
        print("1..1")
        return
    try:
        run()
    finally:
        if ENV is not None:
            ENV.close()


if __name__ == "__main__":
    main()
