#!/usr/bin/env python3
"""The php and nginx modules together, end to end through a real nginx and
a real php-fpm (both in the foreground on private configurations, see
webstack.py), driven by one agent with both modules loaded.

Two throw-away accounts, A and B, each get a pool (php.pool.write) and a
site (nginx.domain.create with has_php) whose PHP goes to that pool over
the socket both modules name with the same php_socket_pattern. HTTP
requests to nginx on 127.0.0.1 (Host: header) show:
- A's script runs as A (posix_geteuid, the account name);
- B's script cannot read a file of A's through PHP, although the unix
  permissions would let it: open_basedir;
- a pool setting php-fpm refuses is CONFIG_INVALID and A's site keeps
  being served by the old pool;
- after php.pool.delete, nginx answers 502 for A, and B is still served.

Needs nginx and php-fpm (Debian: nginx, php8.2-fpm); without them the test
reports a single skipped case (TAP SKIP), never a failure. Nothing here
sleeps to synchronise: php-fpm's reloads are awaited through its ready
notification, nginx's through the exit of its old workers (webstack.py).
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import Agent, expect_error, expect_ok, test  # noqa: E402
from webstack import (PHP_VERSION, Account, Nginx, PhpFpm, have_nginx, have_php_fpm, module_dir,  # noqa: E402
                      reload_command, reloaded, settle)

PHP_UNIT = "php%s-fpm.service" % PHP_VERSION
NGINX_UNIT = "nginx.service"
WINDOW_MS = 50

WHOAMI = """<?php
$pw = posix_getpwuid(posix_geteuid());
echo $pw["name"], "|", posix_geteuid(), "\\n";
"""
# Reads the file named by the query string; says why when it cannot (every
# warning PHP gave on the way).
READ = """<?php
$why = [];
set_error_handler(function ($no, $msg) use (&$why) { $why[] = $msg; return true; });
$r = file_get_contents($_GET["f"]);
if ($r === false) {
        echo "denied|", implode(" / ", $why), "\\n";
} else {
        echo "read|", $r;
}
"""


class Env:
    def __init__(self):
        self.fpm = self.nginx = self.agent = None
        self.accounts = []
        self.t = tempfile.mkdtemp(prefix="jabali-phpng-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def setup(self):
        t = self.t
        os.chmod(t, 0o711)
        home = os.path.join(t, "home")
        os.makedirs(home)
        os.chmod(home, 0o711)
        self.a = Account("jbpa", home)
        self.accounts.append(self.a)
        self.b = Account("jbpb", home)
        self.accounts.append(self.b)

        self.fpm = PhpFpm(t)
        self.fpm.start()
        self.nginx = Nginx(t)
        self.nginx.start()

        self.reloads = os.path.join(t, "reloads")
        open(self.reloads, "w").close()
        cmd = reload_command({PHP_UNIT: self.fpm.reload_shell(), NGINX_UNIT: self.nginx.reload_shell()},
                             self.reloads)
        self.agent = Agent(modules={
            "dir": module_dir(t, ["nginx", "php"]), "test": None,
            "php": {"enabled": True, "settings": self.fpm.settings()},
            "nginx": {"enabled": True, "settings": self.nginx.settings(self.fpm.socket_pattern())},
        }, reload={"command": cmd, "window_ms": WINDOW_MS})

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def apply(self, action, params=None, **extra):
        """A call that may reload php-fpm or nginx, answered once the
        reloaded service serves the change."""
        php0, ng0 = settle(self.agent, PHP_UNIT), settle(self.agent, NGINX_UNIT)
        old = self.nginx.watch_workers()
        try:
            self.fpm.drain_notify()
            resp = self.call(action, params, **extra)
            if reloaded(self.agent, PHP_UNIT, php0):
                self.fpm.wait_ready()
            if reloaded(self.agent, NGINX_UNIT, ng0):
                self.nginx.wait_old_gone(old)
        finally:
            for fd in old.values():
                os.close(fd)
        return resp

    def pool(self, acct, **kw):
        p = {"user": acct.name, "user_id": acct.uid, "php_version": PHP_VERSION}
        p.update(kw)
        return p

    def site(self, domain, acct):
        return {"domain": domain, "user": acct.name, "user_id": acct.uid, "listen_ip": "127.0.0.1",
                "has_php": True, "php_version": PHP_VERSION}

    def get(self, host, path):
        s, body, _ = self.nginx.get(host, path)
        return s, body.decode(errors="replace")

    def close(self):
        try:
            if self.agent:
                self.agent.close()
        finally:
            try:
                for svc in (self.nginx, self.fpm):
                    if svc:
                        svc.stop()
            finally:
                for acct in self.accounts:
                    acct.remove()
                shutil.rmtree(self.t, ignore_errors=True)


ENV = None


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


@test
def pools_and_sites_for_two_accounts():
    e = env()
    for acct in (e.a, e.b):
        r = expect_ok(e.apply("php.pool.write", e.pool(acct)))
        assert r["changed"] is True and r["socket"] == e.fpm.socket_of(acct.name), r
    for domain, acct in (("a.test", e.a), ("b.test", e.b)):
        r = expect_ok(e.apply("nginx.domain.create", e.site(domain, acct)))
        assert r["changed"] is True, r
    e.a.put("public_html/whoami.php", WHOAMI)
    e.b.put("public_html/whoami.php", WHOAMI)
    e.a.put("public_html/read.php", READ)
    e.b.put("public_html/read.php", READ)
    # A file of A's that the unix permissions let everyone read.
    e.secret = e.a.put("private/secret.txt", "A's secret\n", 0o644)
    e.b.put("notes.txt", "B's notes\n", 0o644)


@test
def a_site_runs_php_as_its_account():
    e = env()
    for host, acct in (("a.test", e.a), ("b.test", e.b)):
        s, body = e.get(host, "/whoami.php")
        assert s == 200 and body == "%s|%d\n" % (acct.name, acct.uid), (host, s, body, e.nginx.log())


@test
def open_basedir_keeps_one_account_out_of_anothers_home():
    e = env()
    # A reads its own file; B's PHP is refused A's by open_basedir.
    s, body = e.get("a.test", "/read.php?f=" + e.secret)
    assert s == 200 and body == "read|A's secret\n", (s, body)
    s, body = e.get("b.test", "/read.php?f=" + e.secret)
    assert s == 200 and body.startswith("denied|") and "open_basedir restriction in effect" in body, (s, body)
    # Outside PHP the unix permissions let B read it: open_basedir is what refused.
    out = subprocess.run(["runuser", "-u", e.b.name, "--", "cat", e.secret], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "A's secret\n", out
    # ... and the same script of B's reads B's own files.
    s, body = e.get("b.test", "/read.php?f=" + os.path.join(e.b.home, "notes.txt"))
    assert s == 200 and body == "read|B's notes\n", (s, body)


@test
def a_setting_php_fpm_refuses_keeps_the_site_served():
    e = env()
    php0 = settle(e.agent, PHP_UNIT)
    r = expect_error(e.call("php.pool.write", e.pool(e.a, php_admin_values={"date.timezone": "x("})),
                     "CONFIG_INVALID")
    assert "php-fpm" in r["error"], r
    assert settle(e.agent, PHP_UNIT)["requested"] == php0["requested"], "a refused pool asked for a reload"
    s, body = e.get("a.test", "/whoami.php")
    assert s == 200 and body == "%s|%d\n" % (e.a.name, e.a.uid), (s, body)


@test
def deleting_the_pool_makes_nginx_answer_502():
    e = env()
    r = expect_ok(e.apply("php.pool.delete", {"user": e.a.name, "php_version": PHP_VERSION}))
    assert r["changed"] is True, r
    assert not os.path.lexists(e.fpm.socket_of(e.a.name))
    s, body = e.get("a.test", "/whoami.php")
    assert s == 502, (s, body)
    s, body = e.get("b.test", "/whoami.php")
    assert s == 200 and body == "%s|%d\n" % (e.b.name, e.b.uid), (s, body)
    # Written again, the site is served again.
    expect_ok(e.apply("php.pool.write", e.pool(e.a)))
    s, body = e.get("a.test", "/whoami.php")
    assert s == 200 and body == "%s|%d\n" % (e.a.name, e.a.uid), (s, body)


def main():
    agenttest.suite("php and nginx modules", "root, nginx and php%s-fpm" % PHP_VERSION,
                    have_php_fpm() and have_nginx(), lambda: ENV)


if __name__ == "__main__":
    main()
