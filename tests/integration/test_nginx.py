#!/usr/bin/env python3
"""The nginx module against a real nginx.

One nginx runs in the foreground in a private prefix on 127.0.0.1 high
ports; the agent's reload.command reloads it (and counts the reloads in a
file). A throw-away Linux account owns the sites. Everything started here
is stopped, and the account removed, whatever happens.

Needs the nginx package (Debian: nginx); without it the test reports a
single skipped case (TAP SKIP), never a failure.

Nothing here sleeps to synchronise. A change that reloads nginx is made
through Env.apply(), which waits for observed states: the agent's reloader
for the unit idle again (agent.health) with one more reload done, then every
nginx worker that existed before the call gone (a pidfd per worker, which
becomes readable when that process exits), a new one in its place. Only then
do requests go out, so none reaches a worker still running the old config.
"No reload" is the unit's `requested` count unchanged after the call.
"""

import fcntl
import http.client
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webstack  # noqa: E402
import agenttest  # noqa: E402
from agenttest import BUILDDIR, SRCDIR, Agent, executable, expect_error, expect_golden, expect_ok, test  # noqa: E402

NGINX = "/usr/sbin/nginx"
MODULE_SO = os.path.join(BUILDDIR, "modules", "nginx", ".libs", "nginx.so")
TEMPLATES = os.path.join(SRCDIR, "modules", "nginx", "templates")
WINDOW_MS = 50
UNIT = "nginx.service"          # the module's "unit" setting, left at its default here
WAIT_S = 60                     # the most any awaited state may take (sanitizer builds under load)


class Env:
    """nginx + agent + a test account, torn down by close()."""

    def __init__(self):
        self.nginx = None
        self.agent = None
        self.user = None
        self.t = tempfile.mkdtemp(prefix="jabali-nginx-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def setup(self):
        t = self.t
        os.chmod(t, 0o711)
        # nginx in the foreground on a private prefix, serving 127.0.0.1
        # on a socket bound and listening before it starts (webstack.py).
        self.web = webstack.Nginx(t)
        self.ng, self.avail, self.enabled = self.web.ng, self.web.avail, self.web.enabled
        self.port, self.sport, self.conf = self.web.port, self.web.sport, self.web.conf
        self.cache = os.path.join(self.ng, "cache")
        for d in ("override", "mods", "home"):
            os.makedirs(os.path.join(t, d))
        os.chmod(os.path.join(t, "home"), 0o711)
        self.override = os.path.join(t, "override")

        # The account that owns the sites.
        self.user = "jbng%d" % (os.getpid() % 100000)
        self.home = os.path.join(t, "home", self.user)
        subprocess.run(["useradd", "-m", "-d", self.home, "-s", "/usr/sbin/nologin", "-U", self.user],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(self.home, 0o711)
        self.uid = pwd.getpwnam(self.user).pw_uid

        self.web.start()
        self.nginx = self.web.proc

        mods = os.path.join(t, "mods")
        shutil.copy(MODULE_SO, os.path.join(mods, "nginx.so"))
        os.chmod(os.path.join(mods, "nginx.so"), 0o644)
        os.chmod(mods, 0o755)
        self.reloads = os.path.join(t, "reloads")
        open(self.reloads, "w").close()
        reload_cmd = ["/bin/sh", "-c", "echo r >> '%s' && %s" % (self.reloads, self.web.reload_shell())]
        self.settings = self.web.settings(os.path.join(t, "php{version}-fpm-{user}.sock"))
        self.settings.update({"template_dir": TEMPLATES, "template_override_dir": self.override})
        self.agent = Agent(modules={"dir": mods, "test": None,
                                    "nginx": {"enabled": True, "settings": self.settings,
                                              # changes in flight share a configuration test
                                              "workers": {"max": 8}}},
                           reload={"command": reload_cmd, "window_ms": WINDOW_MS})

    # ---- helpers ----

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def reload_unit(self, client=None):
        """The agent's reloader counters for nginx's unit (agent.health);
        a unit never asked for is idle with all counts 0."""
        resp = client.call("agent.health") if client else self.call("agent.health")
        units = expect_ok(resp)["reloads"]
        return units.get(UNIT, {"state": "idle", "requested": 0, "reloads": 0, "failed": 0})

    def settle(self):
        """The unit's counters once its reloader is idle: nothing armed or
        running, so every reload asked for so far has run to its end (a
        request that arrives while one runs re-arms the unit when that one
        finishes). Each health call is a round trip to the agent."""
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
        """No reload was asked for since `before` (settled counters) and
        none ran (the reload command's own count, n0, is unchanged)."""
        u = self.reload_unit()
        assert u["requested"] == before["requested"] and u["state"] == "idle", (before, u)
        assert self.reload_count() == n0, "the reload command ran"

    def workers(self):
        return self.web.workers()

    def watch_workers(self):
        return self.web.watch_workers()

    def wait_nginx_reloaded(self, before, old):
        """After a reload was asked for: the reloader idle with at least one
        more reload done and none failed; then each worker in `old` exited.
        nginx forks the new generation before it tells the old one to quit,
        so once the old workers are gone only new ones accept connections."""
        u = self.settle()
        assert u["reloads"] >= before["reloads"] + 1, (before, u)
        assert u["failed"] == before["failed"], "the reload failed: %r" % u
        self.web.wait_old_gone(old)

    def apply(self, action, params=None, **extra):
        """A call that may reload nginx, answered only once nginx serves
        the result: when the call asked for a reload (the unit's requested
        count grew), waits for the reload to have ended in nginx too."""
        before = self.settle()
        old = self.watch_workers()
        try:
            assert old, "nginx has no worker: a reload could not be told from none"
            resp = self.call(action, params, **extra)
            if self.reload_unit()["requested"] > before["requested"]:
                self.wait_nginx_reloaded(before, old)
        finally:
            for fd in old.values():
                os.close(fd)
        return resp

    def error_log(self):
        """The tails of nginx's stderr and error.log, for failure messages."""
        return self.web.log()

    def reload_count(self):
        with open(self.reloads) as f:
            return len(f.read().split())

    def get(self, host, path="/"):
        return self.web.get(host, path)

    def expect_http(self, host, path, pred):
        got = self.get(host, path)
        assert pred(*got), "%s%s answered %r" % (host, path, got)
        return got

    def site(self, domain, **kw):
        p = {"domain": domain, "user": self.user, "user_id": self.uid, "listen_ip": "127.0.0.1"}
        p.update(kw)
        return p

    def put_file(self, rel, content):
        path = os.path.join(self.home, rel)
        with open(path, "w") as f:
            f.write(content)
        os.chown(path, self.uid, self.uid)
        os.chmod(path, 0o644)

    def snapshot(self):
        """Everything the module may write, with inode, mtime and bytes."""
        out = {}
        for top in (self.avail, self.enabled, self.home, os.path.join(self.ng, "conf.d")):
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
                if getattr(self, "web", None):
                    self.web.stop()
            finally:
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


def served(body):
    return lambda s, b, h: s == 200 and b == body


# ---- the cases, in order: later ones build on earlier ones ----


@test
def golden_contract():
    e = env()
    expect_golden(e, "nginx")


@test
def create_serves_the_document_root():
    e = env()
    n0 = e.reload_count()
    r = expect_ok(e.apply("nginx.domain.create", e.site("a.test", aliases=["alias-a.test"], redirect_www=True)))
    assert r["changed"] is True, r
    assert r["config_path"] == os.path.join(e.avail, "a.test.conf"), r
    docroot = os.path.join(e.home, "public_html")
    st = os.lstat(docroot)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == e.uid and stat.S_IMODE(st.st_mode) == 0o2750, st
    assert os.readlink(os.path.join(e.enabled, "a.test.conf")) == os.path.join(e.avail, "a.test.conf")
    e.put_file("public_html/index.html", "hello a\n")
    e.expect_http("a.test", "/", served(b"hello a\n"))
    e.expect_http("alias-a.test", "/", served(b"hello a\n"))
    s, b, h = e.expect_http("www.a.test", "/x?y=1", lambda s, b, h: s == 301)
    assert h["Location"] == "http://a.test:%d/x?y=1" % e.port, h
    assert e.reload_count() > n0, "no reload after a new vhost"
    assert not os.listdir(e.settings["state_dir"]), "check directories left behind"


@test
def second_identical_apply_changes_nothing():
    e = env()
    params = e.site("a.test", aliases=["alias-a.test"], redirect_www=True)
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("nginx.domain.create", params))
    assert r["changed"] is False and r["plan"] == [], r
    assert e.snapshot() == before, "an identical apply touched files"
    e.expect_no_reload(u0, n0)


@test
def dry_run_reports_and_writes_nothing():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("nginx.domain.create", e.site("a.test", document_root="v2"), dry_run=True))
    assert r["changed"] is True and "rewrite vhost" in r["plan"] and "create document root" in r["plan"], r
    assert "/v2;" in r["config"], r
    r = expect_ok(e.call("nginx.domain.create", e.site("new.test"), dry_run=True))
    assert r["changed"] is True and "write vhost" in r["plan"], r
    assert e.snapshot() == before, "a dry run wrote something"
    e.expect_no_reload(u0, n0)


@test
def update_changes_what_is_served():
    e = env()
    expect_error(e.call("nginx.domain.update", e.site("missing.test")), "NOT_FOUND")
    r = expect_ok(e.apply("nginx.domain.update", e.site("a.test", document_root="sites/v2")))
    assert r["changed"] is True, r
    e.put_file("sites/v2/index.html", "version 2\n")
    e.expect_http("a.test", "/", served(b"version 2\n"))
    # The alias and the www redirect went with the update.
    e.expect_http("alias-a.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    e.expect_http("www.a.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    g = expect_ok(e.call("nginx.domain.get", {"domain": "a.test"}))
    assert g["enabled"] is True and g["params"]["document_root"] == "sites/v2", g
    assert g["params"]["user"] == e.user, g


INJECTIONS = [
    ("domain", "a.test;"), ("domain", "a.test{"), ("domain", "a.test\n"), ("domain", "../a.test"),
    ("aliases", ["b.test;"]), ("aliases", ["b.test\nlisten 1"]), ("aliases", ["$host"]),
    ("document_root", "../x"), ("document_root", "public_html/../../../etc"), ("document_root", "/etc"),
    ("document_root", "pub;lic"), ("document_root", "pub{x"), ("document_root", "pub}x"),
    ("document_root", "pub$x"), ("document_root", "pub\"x"), ("document_root", "pub'x"),
    ("document_root", "pub\nx"), ("document_root", "pub x"),
    ("user", "root;"), ("user", "x\ny"), ("listen_ip", "127.0.0.1;"), ("listen_ip", "10.255.255.254"),
    ("php_version", "8.2;x"), ("php_version", "8.2$"),
    ("ssl", {"cert": "/etc/x.pem;", "key": "/etc/x.key"}), ("ssl", {"cert": "x.pem", "key": "/k"}),
    ("ssl", {"cert": "/etc/../x.pem", "key": "/k"}), ("ssl", {"cert": "/etc/x pem", "key": "/k"}),
    ("ssl", {"cert": "/etc/$x", "key": "/k"}), ("ssl", {"cert": "/etc/x\"", "key": "/k"}),
    ("limit_req", {"zone": "z;", "burst": 1}), ("limit_req", {"zone": "z", "burst": 0}),
]


@test
def injections_are_refused_before_anything_is_written():
    e = env()
    # A symlinked document root pointing outside the home, at the end of
    # the path and on the way.
    os.symlink("/etc", os.path.join(e.home, "evil"))
    os.lchown(os.path.join(e.home, "evil"), e.uid, e.uid)
    try:
        u0, n0 = e.settle(), e.reload_count()
        before = e.snapshot()
        cases = list(INJECTIONS) + [("document_root", "evil"), ("document_root", "evil/sub")]
        for key, value in cases:
            p = e.site("inj.test", has_php=True, php_version="8.2")
            p[key] = value
            expect_error(e.call("nginx.domain.create", p), "INVALID_PARAMS")
        # Accounts: a system account, and a uid that does not match.
        expect_error(e.call("nginx.domain.create", {"domain": "inj.test", "user": "root", "user_id": 0}),
                     "INVALID_PARAMS")
        expect_error(e.call("nginx.domain.create", e.site("inj.test", user_id=e.uid + 1)), "CONFLICT")
        expect_error(e.call("nginx.domain.create", e.site("inj.test", force_https=True)), "INVALID_PARAMS")
        assert e.snapshot() == before, "a refused request wrote something"
        e.expect_no_reload(u0, n0)
        assert not os.path.exists(os.path.join(e.avail, "inj.test.conf"))
    finally:
        os.unlink(os.path.join(e.home, "evil"))


def write_override(e, text):
    with open(os.path.join(e.override, "vhost.conf.tpl"), "w") as f:
        f.write(text)


@test
def broken_template_keeps_the_old_config():
    e = env()
    expect_ok(e.apply("nginx.domain.create", e.site("b.test", document_root="b")))
    e.put_file("b/index.html", "bee\n")
    e.expect_http("b.test", "/", served(b"bee\n"))
    with open(os.path.join(TEMPLATES, "vhost.conf.tpl")) as f:
        good = f.read()
    try:
        u0, n0 = e.settle(), e.reload_count()
        before = e.snapshot()
        # Refused by nginx in the isolated check: nothing is written.
        write_override(e, good.replace("        disable_symlinks", "        bogus_directive on;\n        disable_symlinks"))
        r = expect_error(e.call("nginx.domain.update", e.site("a.test", document_root="b")), "CONFIG_INVALID")
        assert "bogus_directive" in r["error"], r
        # A template that does not parse.
        write_override(e, good + "{{#unclosed}}\n")
        expect_error(e.call("nginx.domain.update", e.site("a.test", document_root="b")), "CONFIG_INVALID")
        # Passes on its own, fails with the rest (a second default server):
        # written, refused by the full test, the old files put back exactly.
        write_override(e, good.replace("listen {{http_listen}};", "listen {{http_listen}} default_server;"))
        r = expect_error(e.call("nginx.domain.update", e.site("a.test", document_root="b")), "CONFIG_INVALID")
        assert "default" in r["error"], r
        after = e.snapshot()
        for path, (ino, mtime, mode, data) in before.items():
            assert path in after and after[path][2:] == (mode, data), "%s not restored" % path
        assert set(after) == set(before), set(after) ^ set(before)
        e.expect_no_reload(u0, n0)
        e.expect_http("a.test", "/", served(b"version 2\n"))
        e.expect_http("b.test", "/", served(b"bee\n"))
        expect_ok(e.call("nginx.test"))
    finally:
        os.unlink(os.path.join(e.override, "vhost.conf.tpl"))


def batch_lock_path(e):
    """The file of the module's batch lock ("nginx:batch", named the way
    jb_lock_acquire names lock files: the key's safe characters and its
    64-bit FNV-1a hash)."""
    key = b"nginx:batch"
    h = 0xcbf29ce484222325
    for c in key:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return os.path.join(e.settings["lock_dir"], "%s-%016x.lock" % (key.decode(), h))


@test
def one_test_for_a_batch_and_only_the_refused_change_fails():
    """Changes waiting together share one whole-configuration test; when
    nginx refuses the batch, each is tried alone and only the one nginx
    refuses fails, its files put back exactly."""
    e = env()
    with open(os.path.join(TEMPLATES, "vhost.conf.tpl")) as f:
        good = f.read()
    # Passes on its own, fails with the rest for a site with redirect_www:
    # a second default server.
    main = "{{/redirect_www}}\nserver {\n        listen {{http_listen}};"
    assert main in good
    write_override(e, good.replace(main, main[:-1] + "{{#redirect_www}} default_server{{/redirect_www}};"))
    names = ["g1.test", "bad.test", "g2.test"]
    spool = e.settings["spool_dir"]
    answers = {}
    lock = open(batch_lock_path(e), "a")
    try:
        # Holding the batch lock, the three changes queue up in the spool;
        # releasing it lets one leader take them all.
        fcntl.flock(lock, fcntl.LOCK_EX)
        threads = []
        for n in names:
            def go(n=n):
                answers[n] = e.call("nginx.domain.create", e.site(n, document_root=n, redirect_www=(n == "bad.test")))
            threads.append(threading.Thread(target=go))
            threads[-1].start()
        deadline = time.monotonic() + WAIT_S
        while len([f for f in os.listdir(spool) if f.endswith(".chg")]) < len(names):
            assert time.monotonic() < deadline, os.listdir(spool)
            assert all(t.is_alive() for t in threads), answers
            time.sleep(0.005)       # polls a condition; nothing waits on time
        fcntl.flock(lock, fcntl.LOCK_UN)
        for t in threads:
            t.join()
    finally:
        lock.close()
        os.unlink(os.path.join(e.override, "vhost.conf.tpl"))
    r = expect_error(answers["bad.test"], "CONFIG_INVALID")
    assert "default" in r["error"], r
    for n in ("g1.test", "g2.test"):
        assert expect_ok(answers[n])["changed"] is True, answers[n]
    assert not os.path.lexists(os.path.join(e.avail, "bad.test.conf"))
    assert not os.path.lexists(os.path.join(e.enabled, "bad.test.conf"))
    assert os.listdir(spool) == [], os.listdir(spool)
    assert "nginx refused a batch of 3 changes" in e.agent.log(), "the three were not tested together"
    e.put_file("g1.test/index.html", "one\n")
    e.put_file("g2.test/index.html", "two\n")
    expect_ok(e.apply("nginx.reload"))
    e.expect_http("g1.test", "/", served(b"one\n"))
    e.expect_http("g2.test", "/", served(b"two\n"))
    e.expect_http("bad.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    for n in ("g1.test", "g2.test"):
        expect_ok(e.apply("nginx.domain.delete", {"domain": n, "purge_files": True}))


@test
def ssl_and_force_https():
    e = env()
    cert, key = os.path.join(e.t, "s.pem"), os.path.join(e.t, "s.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=s.test",
                    "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A certificate that does not exist: refused by nginx before anything is written.
    u0, n0 = e.settle(), e.reload_count()
    r = expect_error(e.call("nginx.domain.create", e.site("s.test", document_root="s", force_https=True,
                                                          ssl={"cert": cert + ".missing", "key": key})),
                     "CONFIG_INVALID")
    assert not os.path.exists(os.path.join(e.avail, "s.test.conf")) and not os.path.exists(os.path.join(e.home, "s"))
    e.expect_no_reload(u0, n0)
    expect_ok(e.apply("nginx.domain.create", e.site("s.test", document_root="s", force_https=True,
                                                    ssl={"cert": cert, "key": key})))
    e.put_file("s/index.html", "secure\n")
    s, b, h = e.expect_http("s.test", "/p?q=1", lambda s, b, h: s == 301)
    assert h["Location"] == "https://s.test:%d/p?q=1" % e.sport, h
    e.expect_http("s.test", "/.well-known/acme-challenge/none", lambda s, b, h: s == 404)
    import ssl as sslmod
    ctx = sslmod.create_default_context(cafile=cert)
    ctx.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", e.sport, timeout=30, context=ctx)
    try:
        c.request("GET", "/", headers={"Host": "s.test"})
        resp = c.getresponse()
        body = resp.read()
    finally:
        c.close()
    assert resp.status == 200 and body == b"secure\n", (resp.status, body)
    expect_ok(e.apply("nginx.domain.delete", {"domain": "s.test", "purge_files": True}))


@test
def test_and_reload():
    e = env()
    r = expect_ok(e.call("nginx.test"))
    assert r["valid"] is True and r["changed"] is False, r
    e.settle()
    n0 = e.reload_count()
    r = expect_ok(e.apply("nginx.reload"))
    assert r["reloaded"] is True, r
    assert e.reload_count() == n0 + 1, "nginx.reload did not wait for its reload"


@test
def list_and_get():
    e = env()
    r = expect_ok(e.call("nginx.domain.list"))
    names = sorted(d["domain"] for d in r["domains"])
    assert names == ["a.test", "b.test"], r
    expect_error(e.call("nginx.domain.get", {"domain": "nosuch.test"}), "NOT_FOUND")
    # A vhost file this module did not write is listed nowhere and never
    # overwritten or purged.
    foreign = os.path.join(e.avail, "foreign.test.conf")
    with open(foreign, "w") as f:
        f.write("# written by hand\n")
    try:
        assert sorted(d["domain"] for d in expect_ok(e.call("nginx.domain.list"))["domains"]) == names
        expect_error(e.call("nginx.domain.get", {"domain": "foreign.test"}), "CONFLICT")
        expect_error(e.call("nginx.domain.create", e.site("foreign.test")), "CONFLICT")
        expect_error(e.call("nginx.domain.delete", {"domain": "foreign.test", "purge_files": True}), "CONFLICT")
        expect_error(e.call("nginx.domain.delete", {"domain": "foreign.test"}), "CONFLICT")
        with open(foreign) as f:
            assert f.read() == "# written by hand\n"
    finally:
        os.unlink(foreign)


@test
def cache_purge():
    e = env()
    expect_ok(e.apply("nginx.domain.create", e.site("c.test", document_root="c", has_php=True, php_version="8.2",
                                                    cache_enabled=True)))
    # The nginx master makes cache directories while it loads a config,
    # before it forks that config's workers: the reload is complete here.
    cdir = os.path.join(e.cache, "c.test")
    assert os.path.isdir(cdir), "nginx did not make the cache directory"
    os.makedirs(os.path.join(cdir, "a", "bc"))
    with open(os.path.join(cdir, "a", "bc", "entry"), "w") as f:
        f.write("cached")
    r = expect_ok(e.call("nginx.cache.purge", {"domain": "c.test"}, dry_run=True))
    assert r["changed"] is True and os.path.exists(os.path.join(cdir, "a", "bc", "entry"))
    r = expect_ok(e.call("nginx.cache.purge", {"domain": "c.test"}))
    assert r["changed"] is True, r
    assert os.path.isdir(cdir) and os.listdir(cdir) == [], os.listdir(cdir)
    assert os.listdir(e.cache) == ["c.test"], os.listdir(e.cache)
    r = expect_ok(e.call("nginx.cache.purge", {"domain": "c.test"}))
    assert r["changed"] is False, r
    r = expect_ok(e.call("nginx.cache.purge", {"domain": "nocache.test"}))
    assert r["changed"] is False, r
    expect_ok(e.apply("nginx.domain.delete", {"domain": "c.test"}))


@test
def ratelimits():
    e = env()
    zones = [{"name": "perip", "rate": 1, "size_mb": 1}]
    r = expect_ok(e.apply("nginx.ratelimits.apply", {"zones": zones}))
    assert r["changed"] is True, r
    u0, n0 = e.settle(), e.reload_count()
    r = expect_ok(e.call("nginx.ratelimits.apply", {"zones": zones}))
    assert r["changed"] is False, r
    e.expect_no_reload(u0, n0)
    expect_error(e.call("nginx.ratelimits.apply", {"zones": [{"name": "x;y", "rate": 1, "size_mb": 1}]}),
                 "INVALID_PARAMS")
    expect_error(e.call("nginx.domain.create", e.site("d.test", document_root="d",
                                                      limit_req={"zone": "nosuch", "burst": 1})), "CONFIG_INVALID")
    expect_ok(e.apply("nginx.domain.create", e.site("d.test", document_root="d",
                                                    limit_req={"zone": "perip", "burst": 1})))
    e.put_file("d/index.html", "dee\n")
    e.expect_http("d.test", "/", served(b"dee\n"))
    # 1 request a second with a burst of 1 (nodelay): of 5 more made at
    # once, one more may pass and the rest are refused.
    codes = [e.get("d.test")[0] for _ in range(5)]
    assert 503 in codes and set(codes) <= {200, 503}, codes
    # The zone is still used: removing it is refused and the file kept.
    path = os.path.join(e.ng, "conf.d", "jabali-ratelimits.conf")
    with open(path) as f:
        old = f.read()
    expect_error(e.call("nginx.ratelimits.apply", {"zones": []}), "CONFIG_INVALID")
    with open(path) as f:
        assert f.read() == old
    expect_ok(e.apply("nginx.domain.delete", {"domain": "d.test"}))
    r = expect_ok(e.apply("nginx.ratelimits.apply", {"zones": []}))
    assert r["changed"] is True, r


@test
def delete_falls_back_to_the_default_server():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    r = expect_ok(e.call("nginx.domain.delete", {"domain": "a.test"}, dry_run=True))
    assert r["changed"] is True and os.path.exists(os.path.join(e.avail, "a.test.conf")), r
    assert r["plan"] == ["remove vhost", "reload nginx"], r
    e.expect_no_reload(u0, n0)
    r = expect_ok(e.apply("nginx.domain.delete", {"domain": "a.test"}))
    assert r["changed"] is True, r
    assert not os.path.lexists(os.path.join(e.avail, "a.test.conf"))
    assert not os.path.lexists(os.path.join(e.enabled, "a.test.conf"))
    e.expect_http("a.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    assert os.path.exists(os.path.join(e.home, "sites", "v2", "index.html")), "files went without purge_files"
    u0, n0 = e.settle(), e.reload_count()
    r = expect_ok(e.call("nginx.domain.delete", {"domain": "a.test"}))
    assert r["changed"] is False, r
    e.expect_no_reload(u0, n0)
    r = expect_ok(e.apply("nginx.domain.delete", {"domain": "b.test", "purge_files": True}))
    assert r["changed"] is True and not os.path.exists(os.path.join(e.home, "b")), r
    e.expect_http("b.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    assert expect_ok(e.call("nginx.domain.list"))["domains"] == []


def main():
    agenttest.suite("nginx module", "root and %s (Debian package nginx)" % NGINX, executable(NGINX), lambda: ENV)


if __name__ == "__main__":
    main()
