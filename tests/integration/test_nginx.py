#!/usr/bin/env python3
"""The nginx module against a real nginx.

One nginx runs in the foreground in a private prefix on 127.0.0.1 high
ports; the agent's reload.command reloads it (and counts the reloads in a
file). A throw-away Linux account owns the sites. Everything started here
is stopped, and the account removed, whatever happens.

Needs the nginx package (Debian: nginx); without it the test reports a
single skipped case (TAP SKIP), never a failure.
"""

import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agenttest import (Agent, BUILDDIR, GOLDEN, SRCDIR, expect_error, expect_ok, run,  # noqa: E402
                       test)

NGINX = "/usr/sbin/nginx"
MODULE_SO = os.path.join(BUILDDIR, "modules", "nginx", ".libs", "nginx.so")
TEMPLATES = os.path.join(SRCDIR, "modules", "nginx", "templates")
WINDOW_MS = 50


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
        self.ng = os.path.join(t, "ng")
        for d in ("conf", "sites-available", "sites-enabled", "conf.d", "logs", "tmp", "cache"):
            os.makedirs(os.path.join(self.ng, d))
        for d in ("state", "locks", "override", "mods", "home"):
            os.makedirs(os.path.join(t, d))
        os.chmod(os.path.join(t, "home"), 0o711)
        self.avail = os.path.join(self.ng, "sites-available")
        self.enabled = os.path.join(self.ng, "sites-enabled")
        self.override = os.path.join(t, "override")
        self.cache = os.path.join(self.ng, "cache")
        self.port = free_port()
        self.sport = free_port()
        self.conf = os.path.join(self.ng, "conf", "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("""user www-data;
worker_processes 1;
pid {ng}/nginx.pid;
error_log {ng}/logs/error.log notice;
events {{ worker_connections 64; }}
http {{
  include /etc/nginx/mime.types;
  access_log {ng}/logs/access.log;
  client_body_temp_path {ng}/tmp/body; proxy_temp_path {ng}/tmp/proxy;
  fastcgi_temp_path {ng}/tmp/fastcgi; uwsgi_temp_path {ng}/tmp/uwsgi; scgi_temp_path {ng}/tmp/scgi;
  server_names_hash_bucket_size 128;
  server {{ listen 127.0.0.1:{port} default_server; return 404 "default\\n"; }}
  include {ng}/conf.d/*.conf;
  include {ng}/sites-enabled/*.conf;
}}
""".format(ng=self.ng, port=self.port))

        # The account that owns the sites.
        self.user = "jbng%d" % (os.getpid() % 100000)
        self.home = os.path.join(t, "home", self.user)
        subprocess.run(["useradd", "-m", "-d", self.home, "-s", "/usr/sbin/nologin", "-U", self.user],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(self.home, 0o711)
        self.uid = pwd.getpwnam(self.user).pw_uid

        self.nginx_argv = [NGINX, "-p", self.ng + "/", "-c", self.conf]
        self.nginx = subprocess.Popen(self.nginx_argv + ["-g", "daemon off;"], stdin=subprocess.DEVNULL)
        self.wait_http("nobody.test", "/", lambda s, b, h: s == 404 and b == b"default\n")

        mods = os.path.join(t, "mods")
        shutil.copy(MODULE_SO, os.path.join(mods, "nginx.so"))
        os.chmod(os.path.join(mods, "nginx.so"), 0o644)
        os.chmod(mods, 0o755)
        self.reloads = os.path.join(t, "reloads")
        open(self.reloads, "w").close()
        reload_cmd = ["/bin/sh", "-c", "echo r >> '%s' && exec %s -s reload" % (self.reloads, " ".join(
            "'%s'" % a for a in self.nginx_argv))]
        self.settings = {
            "nginx": NGINX,
            "conf": self.conf,
            "prefix": self.ng + "/",
            "sites_available": self.avail,
            "sites_enabled": self.enabled,
            "template_dir": TEMPLATES,
            "template_override_dir": self.override,
            "state_dir": os.path.join(t, "state"),
            "cache_dir": self.cache,
            "ratelimit_dir": os.path.join(self.ng, "conf.d"),
            "lock_dir": os.path.join(t, "locks"),
            "listen_ips": ["127.0.0.1"],
            "http_port": self.port,
            "https_port": self.sport,
            "php_socket_pattern": os.path.join(t, "php{version}-fpm-{user}.sock"),
        }
        self.agent = Agent(modules={"dir": mods, "test": None,
                                    "nginx": {"enabled": True, "settings": self.settings}},
                           reload={"command": reload_cmd, "window_ms": WINDOW_MS})

    # ---- helpers ----

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def settled_reload_count(self):
        """The reload count once no reload has run for a while: reloads
        asked for by earlier cases may still be coalescing or running."""
        deadline = time.monotonic() + 15
        n = self.reload_count()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            m = self.reload_count()
            if m == n:
                return n
            n = m
        raise AssertionError("nginx keeps being reloaded")

    def reload_count(self):
        with open(self.reloads) as f:
            return len(f.read().split())

    def get(self, host, path="/"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            c.request("GET", path, headers={"Host": host})
            r = c.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            c.close()

    def wait_http(self, host, path, pred, timeout=10):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.get(host, path)
                if pred(*last):
                    return last
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError("%s%s never answered as expected; last: %r" % (host, path, last))

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
                if self.nginx and self.nginx.poll() is None:
                    self.nginx.send_signal(signal.SIGTERM)
                    try:
                        self.nginx.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        self.nginx.kill()
                        self.nginx.wait()
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
    got = expect_ok(e.call("agent.describe", {"module": "nginx"}))["actions"]
    path = os.path.join(GOLDEN, "nginx.json")
    text = json.dumps(got, indent=2, sort_keys=False) + "\n"
    if os.environ.get("JABALI_UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        want = f.read()
    assert text == want, "agent.describe for nginx drifted from %s; review and regenerate with " \
                         "JABALI_UPDATE_GOLDEN=1" % path


@test
def create_serves_the_document_root():
    e = env()
    n0 = e.reload_count()
    r = expect_ok(e.call("nginx.domain.create", e.site("a.test", aliases=["alias-a.test"], redirect_www=True)))
    assert r["changed"] is True, r
    assert r["config_path"] == os.path.join(e.avail, "a.test.conf"), r
    docroot = os.path.join(e.home, "public_html")
    st = os.lstat(docroot)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == e.uid and stat.S_IMODE(st.st_mode) == 0o2750, st
    assert os.readlink(os.path.join(e.enabled, "a.test.conf")) == os.path.join(e.avail, "a.test.conf")
    e.put_file("public_html/index.html", "hello a\n")
    e.wait_http("a.test", "/", served(b"hello a\n"))
    e.wait_http("alias-a.test", "/", served(b"hello a\n"))
    s, b, h = e.wait_http("www.a.test", "/x?y=1", lambda s, b, h: s == 301)
    assert h["Location"] == "http://a.test:%d/x?y=1" % e.port, h
    assert e.reload_count() > n0, "no reload after a new vhost"
    assert not os.listdir(os.path.join(e.t, "state")), "check directories left behind"


@test
def second_identical_apply_changes_nothing():
    e = env()
    params = e.site("a.test", aliases=["alias-a.test"], redirect_www=True)
    n0 = e.settled_reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("nginx.domain.create", params))
    assert r["changed"] is False and r["plan"] == [], r
    time.sleep(WINDOW_MS / 1000 * 6)
    assert e.snapshot() == before, "an identical apply touched files"
    assert e.reload_count() == n0, "an identical apply reloaded nginx"


@test
def dry_run_reports_and_writes_nothing():
    e = env()
    n0 = e.settled_reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("nginx.domain.create", e.site("a.test", document_root="v2"), dry_run=True))
    assert r["changed"] is True and "rewrite vhost" in r["plan"] and "create document root" in r["plan"], r
    assert "/v2;" in r["config"], r
    r = expect_ok(e.call("nginx.domain.create", e.site("new.test"), dry_run=True))
    assert r["changed"] is True and "write vhost" in r["plan"], r
    time.sleep(WINDOW_MS / 1000 * 4)
    assert e.snapshot() == before and e.reload_count() == n0


@test
def update_changes_what_is_served():
    e = env()
    expect_error(e.call("nginx.domain.update", e.site("missing.test")), "NOT_FOUND")
    r = expect_ok(e.call("nginx.domain.update", e.site("a.test", document_root="sites/v2")))
    assert r["changed"] is True, r
    e.put_file("sites/v2/index.html", "version 2\n")
    e.wait_http("a.test", "/", served(b"version 2\n"))
    # The alias and the www redirect went with the update (old workers may
    # still answer for a moment after the reload).
    e.wait_http("alias-a.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    e.wait_http("www.a.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
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
        n0 = e.settled_reload_count()
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
        time.sleep(WINDOW_MS / 1000 * 4)
        assert e.snapshot() == before, "a refused request wrote something"
        assert e.reload_count() == n0
        assert not os.path.exists(os.path.join(e.avail, "inj.test.conf"))
    finally:
        os.unlink(os.path.join(e.home, "evil"))


def write_override(e, text):
    with open(os.path.join(e.override, "vhost.conf.tpl"), "w") as f:
        f.write(text)


@test
def broken_template_keeps_the_old_config():
    e = env()
    expect_ok(e.call("nginx.domain.create", e.site("b.test", document_root="b")))
    e.put_file("b/index.html", "bee\n")
    e.wait_http("b.test", "/", served(b"bee\n"))
    with open(os.path.join(TEMPLATES, "vhost.conf.tpl")) as f:
        good = f.read()
    try:
        n0 = e.settled_reload_count()
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
        time.sleep(WINDOW_MS / 1000 * 4)
        after = e.snapshot()
        for path, (ino, mtime, mode, data) in before.items():
            assert path in after and after[path][2:] == (mode, data), "%s not restored" % path
        assert set(after) == set(before), set(after) ^ set(before)
        assert e.reload_count() == n0
        e.wait_http("a.test", "/", served(b"version 2\n"))
        e.wait_http("b.test", "/", served(b"bee\n"))
        expect_ok(e.call("nginx.test"))
    finally:
        os.unlink(os.path.join(e.override, "vhost.conf.tpl"))


@test
def ssl_and_force_https():
    e = env()
    cert, key = os.path.join(e.t, "s.pem"), os.path.join(e.t, "s.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=s.test",
                    "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A certificate that does not exist: refused by nginx before anything is written.
    r = expect_error(e.call("nginx.domain.create", e.site("s.test", document_root="s", force_https=True,
                                                          ssl={"cert": cert + ".missing", "key": key})),
                     "CONFIG_INVALID")
    assert not os.path.exists(os.path.join(e.avail, "s.test.conf")) and not os.path.exists(os.path.join(e.home, "s"))
    expect_ok(e.call("nginx.domain.create", e.site("s.test", document_root="s", force_https=True,
                                                   ssl={"cert": cert, "key": key})))
    e.put_file("s/index.html", "secure\n")
    s, b, h = e.wait_http("s.test", "/p?q=1", lambda s, b, h: s == 301)
    assert h["Location"] == "https://s.test:%d/p?q=1" % e.sport, h
    e.wait_http("s.test", "/.well-known/acme-challenge/none", lambda s, b, h: s == 404)
    import ssl as sslmod
    ctx = sslmod.create_default_context(cafile=cert)
    ctx.check_hostname = False
    deadline = time.monotonic() + 10
    while True:
        try:
            c = http.client.HTTPSConnection("127.0.0.1", e.sport, timeout=5, context=ctx)
            c.request("GET", "/", headers={"Host": "s.test"})
            resp = c.getresponse()
            body = resp.read()
            c.close()
            if resp.status == 200 and body == b"secure\n":
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "HTTPS never served s.test"
        time.sleep(0.05)
    expect_ok(e.call("nginx.domain.delete", {"domain": "s.test", "purge_files": True}))


@test
def test_and_reload():
    e = env()
    r = expect_ok(e.call("nginx.test"))
    assert r["valid"] is True and r["changed"] is False, r
    n0 = e.settled_reload_count()
    r = expect_ok(e.call("nginx.reload"))
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
    expect_ok(e.call("nginx.domain.create", e.site("c.test", document_root="c", has_php=True, php_version="8.2",
                                                   cache_enabled=True)))
    cdir = os.path.join(e.cache, "c.test")
    deadline = time.monotonic() + 10
    while not os.path.isdir(cdir) and time.monotonic() < deadline:
        time.sleep(0.05)
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
    expect_ok(e.call("nginx.domain.delete", {"domain": "c.test"}))


@test
def ratelimits():
    e = env()
    zones = [{"name": "perip", "rate": 1, "size_mb": 1}]
    r = expect_ok(e.call("nginx.ratelimits.apply", {"zones": zones}))
    assert r["changed"] is True, r
    r = expect_ok(e.call("nginx.ratelimits.apply", {"zones": zones}))
    assert r["changed"] is False, r
    expect_error(e.call("nginx.ratelimits.apply", {"zones": [{"name": "x;y", "rate": 1, "size_mb": 1}]}),
                 "INVALID_PARAMS")
    expect_error(e.call("nginx.domain.create", e.site("d.test", document_root="d",
                                                      limit_req={"zone": "nosuch", "burst": 1})), "CONFIG_INVALID")
    expect_ok(e.call("nginx.domain.create", e.site("d.test", document_root="d", limit_req={"zone": "perip", "burst": 1})))
    e.put_file("d/index.html", "dee\n")
    e.wait_http("d.test", "/", served(b"dee\n"))
    codes = [e.get("d.test")[0] for _ in range(5)]
    assert 503 in codes, codes
    # The zone is still used: removing it is refused and the file kept.
    path = os.path.join(e.ng, "conf.d", "jabali-ratelimits.conf")
    with open(path) as f:
        old = f.read()
    expect_error(e.call("nginx.ratelimits.apply", {"zones": []}), "CONFIG_INVALID")
    with open(path) as f:
        assert f.read() == old
    expect_ok(e.call("nginx.domain.delete", {"domain": "d.test"}))
    r = expect_ok(e.call("nginx.ratelimits.apply", {"zones": []}))
    assert r["changed"] is True, r


@test
def delete_falls_back_to_the_default_server():
    e = env()
    r = expect_ok(e.call("nginx.domain.delete", {"domain": "a.test"}, dry_run=True))
    assert r["changed"] is True and os.path.exists(os.path.join(e.avail, "a.test.conf")), r
    assert r["plan"] == ["remove vhost", "reload nginx"], r
    r = expect_ok(e.call("nginx.domain.delete", {"domain": "a.test"}))
    assert r["changed"] is True, r
    assert not os.path.lexists(os.path.join(e.avail, "a.test.conf"))
    assert not os.path.lexists(os.path.join(e.enabled, "a.test.conf"))
    e.wait_http("a.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    assert os.path.exists(os.path.join(e.home, "sites", "v2", "index.html")), "files went without purge_files"
    n0 = e.settled_reload_count()
    r = expect_ok(e.call("nginx.domain.delete", {"domain": "a.test"}))
    assert r["changed"] is False, r
    time.sleep(WINDOW_MS / 1000 * 6)
    assert e.reload_count() == n0
    r = expect_ok(e.call("nginx.domain.delete", {"domain": "b.test", "purge_files": True}))
    assert r["changed"] is True and not os.path.exists(os.path.join(e.home, "b")), r
    e.wait_http("b.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    assert expect_ok(e.call("nginx.domain.list"))["domains"] == []


def main():
    if not os.access(NGINX, os.X_OK) or os.geteuid() != 0:
        print("ok 1 - nginx module # SKIP needs root and %s (Debian package nginx)" % NGINX)
        print("1..1")
        return
    try:
        run()
    finally:
        if ENV is not None:
            ENV.close()


if __name__ == "__main__":
    main()
