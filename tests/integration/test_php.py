#!/usr/bin/env python3
"""The php module against a real php-fpm.

One php-fpm runs in the foreground (-F) on a private configuration (see
webstack.PhpFpm): a main configuration that includes the module's pool
directory, and a conf.d of links into a private copy of Debian's
mods-available, scanned through PHP_INI_SCAN_DIR, with the calendar
extension left out. The agent's reload.command reloads it with SIGUSR2
(and counts the reloads in a file). A throw-away Linux account owns the
pool. What a pool does is checked from outside: its socket, and FastCGI
requests spoken through it by this process, whose scripts print the uid
they run as, open_basedir, memory_limit and whether an extension is loaded.

Needs php-fpm (Debian: php8.2-fpm); without it the test reports a single
skipped case (TAP SKIP), never a failure.

Nothing here sleeps to synchronise: a change that reloads php-fpm is made
through Env.apply(), which waits for the agent's reloader for the unit to
be idle with one more reload done, then for the php-fpm master's
"ready" notification. "No reload" is the unit's `requested` count
unchanged after the call.
"""

import json
import os
import shutil
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import Agent, expect_error, expect_golden, expect_ok, test  # noqa: E402
from webstack import (FPM, PHP_VERSION, Account, PhpFpm, fcgi_request, have_php_fpm, module_dir,  # noqa: E402
                      reload_command, reload_count, reload_state, reloaded, settle, snapshot, templates,
                      www_data)

VERSION = PHP_VERSION
UNIT = "php%s-fpm.service" % VERSION    # the module's "unit" setting, left at its default
WINDOW_MS = 50

ID_SCRIPT = """<?php
echo posix_geteuid(), "|", ini_get("open_basedir"), "|", ini_get("memory_limit"), "|",
     @file_get_contents("/etc/hostname") === false ? "denied" : "read", "|", ini_get("date.timezone"), "\\n";
"""
EXT_SCRIPT = """<?php
echo extension_loaded("calendar") ? "calendar" : "no-calendar", "\\n";
"""
BROKEN_EXT = "; a module whose library does not exist\n; priority=20\nextension=jabali_no_such_ext.so\n"


class Env:
    """php-fpm + agent + a test account, torn down by close()."""

    def __init__(self):
        self.fpm = None
        self.agent = None
        self.acct = None
        self.t = tempfile.mkdtemp(prefix="jabali-php-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def setup(self):
        t = self.t
        os.chmod(t, 0o711)
        self.fpm = PhpFpm(t, ext_off=("calendar",))
        with open(os.path.join(self.fpm.mods, "jbbroken.ini"), "w") as f:
            f.write(BROKEN_EXT)
        # ctype is enabled "by the maintainer script", as on a fresh install.
        os.makedirs(os.path.join(self.fpm.state, "enabled_by_maint"))
        open(os.path.join(self.fpm.state, "enabled_by_maint", "ctype"), "w").close()
        self.versions_dir = os.path.join(t, "etc-php")
        for d in ("8.2", "7.4", "junk", "8.x"):
            os.makedirs(os.path.join(self.versions_dir, d))
        self.override = os.path.join(t, "override")
        os.makedirs(self.override)
        home = os.path.join(t, "home")
        os.makedirs(home)
        os.chmod(home, 0o711)

        self.acct = Account("jbphp", home)
        self.user, self.uid, self.home = self.acct.name, self.acct.uid, self.acct.home
        self.script = self.acct.put("public_html/id.php", ID_SCRIPT)
        self.ext_script = self.acct.put("public_html/ext.php", EXT_SCRIPT)
        self.fpm.start()

        mods = module_dir(t, ["php"])
        self.reloads = os.path.join(t, "reloads")
        open(self.reloads, "w").close()
        self.settings = dict(self.fpm.settings(), template_override_dir=self.override,
                             versions_dir=self.versions_dir)
        self.pool_dir = self.fpm.pool_dir
        self.socket = self.fpm.socket_of(self.user)
        self.agent = Agent(modules={"dir": mods, "test": None,
                                    "php": {"enabled": True, "settings": self.settings}},
                           reload={"command": reload_command({UNIT: self.fpm.reload_shell()}, self.reloads),
                                   "window_ms": WINDOW_MS})

    # ---- helpers ----

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def settle(self):
        return settle(self.agent, UNIT)

    def reload_count(self):
        return reload_count(self.reloads, UNIT)

    def expect_no_reload(self, before, n0):
        u = reload_state(self.agent, UNIT)
        assert u["requested"] == before["requested"] and u["state"] == "idle", (before, u)
        assert self.reload_count() == n0, "the reload command ran"

    def apply(self, action, params=None, **extra):
        """A call that may reload php-fpm, answered once php-fpm's master
        has come back ready after the reload."""
        before = self.settle()
        self.fpm.drain_notify()
        resp = self.call(action, params, **extra)
        if reloaded(self.agent, UNIT, before):
            self.fpm.wait_ready()
        return resp

    def pool(self, **kw):
        p = {"user": self.user, "user_id": self.uid, "php_version": VERSION}
        p.update(kw)
        return p

    def run_id(self):
        """uid|open_basedir|memory_limit|denied-or-read|date.timezone, from inside the pool."""
        out, err = fcgi_request(self.socket, self.script)
        assert not err, err
        return out.decode().strip().split("|")

    def calendar(self):
        out, err = fcgi_request(self.socket, self.ext_script)
        assert not err, err
        return out.decode().strip()

    def snapshot(self):
        return snapshot(self.pool_dir, self.home, self.fpm.conf_d, self.fpm.state)

    def close(self):
        try:
            if self.agent:
                self.agent.close()
        finally:
            try:
                if self.fpm:
                    self.fpm.stop()
            finally:
                if self.acct:
                    self.acct.remove()
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
    expect_golden(e, "php")


@test
def write_runs_php_as_the_user():
    e = env()
    n0 = e.reload_count()
    r = expect_ok(e.apply("php.pool.write", e.pool(php_admin_values={"max_input_vars": "3000",
                                                                       "date.timezone": "Europe/Berlin"})))
    assert r["changed"] is True, r
    assert r["config_path"] == os.path.join(e.pool_dir, "jabali-%s.conf" % e.user), r
    assert r["socket"] == e.socket, r
    assert r["plan"] == ["create temporary directory", "write pool", "reload php-fpm"], r
    assert e.reload_count() == n0 + 1, "no reload after a new pool"
    www_uid, www_gid = www_data()
    st = os.lstat(e.socket)
    assert stat.S_ISSOCK(st.st_mode) and st.st_uid == www_uid and st.st_gid == www_gid, st
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    tmp = os.path.join(e.home, "tmp")
    st = os.lstat(tmp)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == e.uid and stat.S_IMODE(st.st_mode) == 0o700, st
    uid, basedir, mem, etc, tz = e.run_id()
    assert uid == str(e.uid), (uid, e.uid)
    assert basedir == "%s/:%s/" % (e.home, tmp), basedir
    assert mem == "256M" and etc == "denied" and tz == "Europe/Berlin", (mem, etc, tz)
    with open(r["config_path"]) as f:
        text = f.read()
    assert "\n[jabali-%s]\n" % e.user in text and "request_terminate_timeout = 300\n" in text, text
    assert text.index("php_admin_value[date.timezone]") < text.index("php_admin_value[max_input_vars]"), text


@test
def second_identical_write_changes_nothing():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    # The same values, the map's members in another order.
    r = expect_ok(e.call("php.pool.write", e.pool(php_admin_values={"date.timezone": "Europe/Berlin",
                                                                      "max_input_vars": "3000"})))
    assert r["changed"] is False and r["plan"] == [], r
    assert e.snapshot() == before, "an identical write touched files"
    e.expect_no_reload(u0, n0)


@test
def dry_run_reports_and_writes_nothing():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("php.pool.write", e.pool(memory_limit="128M"), dry_run=True))
    assert r["changed"] is True and r["plan"] == ["rewrite pool", "reload php-fpm"], r
    assert "php_admin_value[memory_limit] = 128M\n" in r["config"], r
    r = expect_ok(e.call("php.pool.delete", {"user": e.user, "php_version": VERSION}, dry_run=True))
    assert r["changed"] is True and r["plan"] == ["remove pool", "reload php-fpm"], r
    r = expect_ok(e.call("php.ext.enable", {"php_version": VERSION, "ext": "calendar"}, dry_run=True))
    assert r["changed"] is True and r["plan"] == ["link conf.d", "record enabled_by_admin", "reload php-fpm"], r
    r = expect_ok(e.call("php.reload", {"php_version": VERSION}, dry_run=True))
    assert r["changed"] is True and r["reloaded"] is False, r
    assert e.snapshot() == before, "a dry run wrote something"
    e.expect_no_reload(u0, n0)


@test
def write_changes_what_is_served():
    e = env()
    r = expect_ok(e.apply("php.pool.write", e.pool(memory_limit="128M", pm="dynamic", max_children=4,
                                                   start_servers=2, min_spare=1, max_spare=3,
                                                   request_terminate_timeout=60, upload_max_filesize="8M",
                                                   php_admin_values={"date.timezone": "UTC"})))
    assert r["changed"] is True and r["plan"] == ["rewrite pool", "reload php-fpm"], r
    uid, _, mem, _, tz = e.run_id()
    assert uid == str(e.uid) and mem == "128M" and tz == "UTC", (uid, mem, tz)
    with open(os.path.join(e.pool_dir, "jabali-%s.conf" % e.user)) as f:
        text = f.read()
    assert "pm = dynamic\n" in text and "pm.start_servers = 2\n" in text and "max_input_vars" not in text, text
    g = expect_ok(e.call("php.pool.get", {"user": e.user, "php_version": VERSION}))
    assert g["params"]["memory_limit"] == "128M" and g["params"]["pm"] == "dynamic", g
    assert g["params"]["php_admin_values"] == {"date.timezone": "UTC"}, g
    assert g["params"]["request_terminate_timeout"] == 60 and g["params"]["upload_max_filesize"] == "8M", g
    assert g["socket"] == e.socket and g["changed"] is False, g


def hostile_write_cases(e):
    """(params to change, code): each must be refused before anything is written."""
    long_value = "x" * 257
    cases = [
        ({"user": "x\ny"}, "INVALID_PARAMS"), ({"user": "a;b"}, "INVALID_PARAMS"),
        ({"user": 'a"b'}, "INVALID_PARAMS"), ({"user": "${HOME}"}, "INVALID_PARAMS"),
        ({"user": "../etc"}, "INVALID_PARAMS"), ({"user": "root", "user_id": 0}, "INVALID_PARAMS"),
        ({"user": "nosuchuser%d" % os.getpid()}, "INVALID_PARAMS"), ({"user": ""}, "INVALID_PARAMS"),
        ({"user_id": e.uid + 1}, "CONFLICT"), ({"user_id": -1}, "INVALID_PARAMS"),
        ({"php_version": "8.2;x"}, "INVALID_PARAMS"), ({"php_version": "8.2\n"}, "INVALID_PARAMS"),
        ({"php_version": "${x}"}, "INVALID_PARAMS"), ({"php_version": "7.4"}, "INVALID_PARAMS"),
        ({"php_version": "../8.2"}, "INVALID_PARAMS"), ({"pm": "bogus"}, "INVALID_PARAMS"),
        ({"pm": "static\n"}, "INVALID_PARAMS"), ({"max_children": 0}, "INVALID_PARAMS"),
        ({"max_children": 1001}, "INVALID_PARAMS"), ({"start_servers": 0}, "INVALID_PARAMS"),
        ({"min_spare": 0}, "INVALID_PARAMS"), ({"max_spare": 1001}, "INVALID_PARAMS"),
        ({"max_requests": -1}, "INVALID_PARAMS"), ({"process_idle_timeout": 0}, "INVALID_PARAMS"),
        ({"request_terminate_timeout": -1}, "INVALID_PARAMS"),
        ({"request_terminate_timeout": 86401}, "INVALID_PARAMS"),
        ({"pm": "dynamic", "start_servers": 5, "max_spare": 3}, "INVALID_PARAMS"),
        ({"memory_limit": "128M;"}, "INVALID_PARAMS"), ({"memory_limit": "0M"}, "INVALID_PARAMS"),
        ({"memory_limit": "1T"}, "INVALID_PARAMS"), ({"memory_limit": "15M"}, "INVALID_PARAMS"),
        ({"memory_limit": "65G"}, "INVALID_PARAMS"), ({"memory_limit": "-1"}, "INVALID_PARAMS"),
        ({"memory_limit": 128}, "INVALID_PARAMS"), ({"memory_limit": "256MB"}, "INVALID_PARAMS"),
        ({"memory_limit": "1234567"}, "INVALID_PARAMS"), ({"memory_limit": "128m"}, "INVALID_PARAMS"),
        ({"upload_max_filesize": "0"}, "INVALID_PARAMS"), ({"upload_max_filesize": "x"}, "INVALID_PARAMS"),
        ({"upload_max_filesize": "64M\n"}, "INVALID_PARAMS"),
        ({"php_admin_values": {"open_basedir": "/"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"upload_tmp_dir": "/tmp"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"memory_limit": "1G"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"disable_functions": ""}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"include_path": "/"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"date.timezone": "UTC;x"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"date.timezone": 'a"b'}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"date.timezone": "${HOME}"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"date.timezone": "a\nb"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"date.timezone": " UTC"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"date.timezone": ""}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"date.timezone": long_value}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"date.timezone": 1}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"a b": "1"}}, "INVALID_PARAMS"),
        ({"php_admin_values": {"display_errors\n": "1"}}, "INVALID_PARAMS"),
        ({"php_admin_values": ["date.timezone=UTC"]}, "INVALID_PARAMS"),
        ({"extra": "x"}, "INVALID_PARAMS"),
    ]
    return cases


@test
def hostile_params_are_refused_before_anything_is_written():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    for change, code in hostile_write_cases(e):
        p = e.pool()
        p.update(change)
        expect_error(e.call("php.pool.write", p), code)
    # A NUL never gets past the envelope (strict JSON): INVALID_JSON, no request id.
    c = e.agent.client()
    try:
        c.send("php.pool.write", e.pool(php_admin_values={"date.timezone": "a\u0000b"}))
        r = c.recv()
        assert r["ok"] is False and r["code"] == "INVALID_JSON" and r["request_id"] is None, r
    finally:
        c.close()
    r = expect_error(e.call("php.pool.write", e.pool(php_admin_values={"include_path": "/"})), "INVALID_PARAMS")
    assert "'include_path' is not in the allowed list" in r["error"], r
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
        expect_error(e.call("php.pool.write", e.pool(memory_limit="64M")), "INVALID_PARAMS")
    finally:
        os.unlink(tmp)
        os.rename(tmp + ".real", tmp)
    assert e.snapshot() == before, "a refused request wrote something"
    e.expect_no_reload(u0, n0)


@test
def a_value_php_fpm_refuses_keeps_the_old_pool():
    e = env()
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    # Passes the schema and the module's checks; php-fpm's ini parser
    # refuses the unbalanced parenthesis: written, tested, put back.
    r = expect_error(e.call("php.pool.write", e.pool(memory_limit="96M", php_admin_values={"date.timezone": "x("})),
                     "CONFIG_INVALID")
    assert "php-fpm%s -t" % VERSION in r["error"], r
    after = e.snapshot()
    for path, (ino, mtime, mode, data) in before.items():
        assert path in after and after[path][2:] == (mode, data), "%s not restored" % path
    assert set(after) == set(before), set(after) ^ set(before)
    e.expect_no_reload(u0, n0)
    uid, _, mem, _, tz = e.run_id()
    assert uid == str(e.uid) and mem == "128M" and tz == "UTC", "the old pool is not served: %r" % ((uid, mem, tz),)
    expect_ok(e.call("php.test"))


def write_override(e, text):
    with open(os.path.join(e.override, "pool.conf.tpl"), "w") as f:
        f.write(text)


@test
def broken_template_keeps_the_old_pool():
    e = env()
    with open(os.path.join(templates("php"), "pool.conf.tpl")) as f:
        good = f.read()
    try:
        u0, n0 = e.settle(), e.reload_count()
        before = e.snapshot()
        # Refused by php-fpm -t: written, tested, put back exactly.
        write_override(e, good.replace("chdir = /", "chdir = /\nbogus_entry = 1"))
        r = expect_error(e.call("php.pool.write", e.pool(memory_limit="96M")), "CONFIG_INVALID")
        assert "bogus_entry" in r["error"], r
        # A template that does not parse: nothing is written.
        write_override(e, good + "{{#unclosed}}\n")
        expect_error(e.call("php.pool.write", e.pool(memory_limit="96M")), "CONFIG_INVALID")
        # A template that names a value the module does not provide.
        write_override(e, good.replace("chdir = /", "chdir = {{no_such_value}}"))
        expect_error(e.call("php.pool.write", e.pool(memory_limit="96M")), "CONFIG_INVALID")
        after = e.snapshot()
        for path, (ino, mtime, mode, data) in before.items():
            assert path in after and after[path][2:] == (mode, data), "%s not restored" % path
        assert set(after) == set(before), set(after) ^ set(before)
        e.expect_no_reload(u0, n0)
        uid, _, mem, _, _ = e.run_id()
        assert uid == str(e.uid) and mem == "128M", "the old pool is not served: %r" % ((uid, mem),)
    finally:
        os.unlink(os.path.join(e.override, "pool.conf.tpl"))


def ext(name):
    return {"php_version": VERSION, "ext": name}


@test
def ext_enable_and_disable_change_what_php_fpm_loads():
    e = env()
    link = os.path.join(e.fpm.conf_d, "20-calendar.ini")
    state = e.fpm.state
    assert e.calendar() == "no-calendar"
    r = expect_ok(e.apply("php.ext.enable", ext("calendar")))
    assert r["changed"] is True and r["link"] == "20-calendar.ini", r
    assert os.readlink(link) == os.path.join(e.fpm.mods, "calendar.ini")
    assert os.path.exists(os.path.join(state, "enabled_by_admin", "calendar"))
    assert e.calendar() == "calendar", "php-fpm did not load calendar after enable"
    # Again: nothing to do, nothing touched, no reload.
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("php.ext.enable", ext("calendar")))
    assert r["changed"] is False and r["plan"] == [], r
    assert e.snapshot() == before
    e.expect_no_reload(u0, n0)

    r = expect_ok(e.apply("php.ext.disable", ext("calendar")))
    assert r["changed"] is True and r["plan"] == ["unlink conf.d", "record disabled_by_admin", "reload php-fpm"], r
    assert not os.path.lexists(link)
    assert os.path.exists(os.path.join(state, "disabled_by_admin", "calendar"))
    assert not os.path.exists(os.path.join(state, "enabled_by_admin", "calendar"))
    assert e.calendar() == "no-calendar", "php-fpm still loads calendar after disable"
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    r = expect_ok(e.call("php.ext.disable", ext("calendar")))
    assert r["changed"] is False, r
    assert e.snapshot() == before
    e.expect_no_reload(u0, n0)


@test
def ext_records_follow_phpenmod():
    e = env()
    # ctype: linked, recorded as the maintainer's; enabling makes it the
    # admin's decision (phpenmod does the same) and needs no reload.
    u0, n0 = e.settle(), e.reload_count()
    r = expect_ok(e.call("php.ext.enable", ext("ctype")))
    assert r["changed"] is True and r["plan"] == ["record enabled_by_admin"], r
    assert os.path.exists(os.path.join(e.fpm.state, "enabled_by_admin", "ctype"))
    assert not os.path.exists(os.path.join(e.fpm.state, "enabled_by_maint", "ctype"))
    e.expect_no_reload(u0, n0)
    r = expect_ok(e.call("php.ext.enable", ext("ctype")))
    assert r["changed"] is False, r


@test
def ext_refusals_leave_everything_as_it_was():
    e = env()
    exif = os.path.join(e.fpm.conf_d, "20-exif.ini")
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    for name in ("../calendar", "x/y", "", "x;y", ".x", "-x", "x y", "x" * 65, "cal\nendar"):
        expect_error(e.call("php.ext.enable", ext(name)), "INVALID_PARAMS")
        expect_error(e.call("php.ext.disable", ext(name)), "INVALID_PARAMS")
    expect_error(e.call("php.ext.enable", {"php_version": "7.4", "ext": "calendar"}), "INVALID_PARAMS")
    r = expect_error(e.call("php.ext.enable", ext("nosuchext")), "NOT_FOUND")
    assert "nosuchext.ini" in r["error"], r
    expect_error(e.call("php.ext.disable", ext("nosuchext")), "NOT_FOUND")
    # An extension whose library is missing: php-fpm -t passes it with a
    # startup warning; the module refuses what it newly warns about.
    r = expect_error(e.call("php.ext.enable", ext("jbbroken")), "CONFIG_INVALID")
    assert "jabali_no_such_ext" in r["error"], r
    assert e.snapshot() == before, "a refused ext change left something"
    e.expect_no_reload(u0, n0)
    # A link replaced by hand with a file, and a link pointing elsewhere:
    # left alone.
    os.unlink(exif)
    with open(exif, "w") as f:
        f.write("extension=exif.so\n")
    try:
        expect_error(e.call("php.ext.enable", ext("exif")), "CONFLICT")
        expect_error(e.call("php.ext.disable", ext("exif")), "CONFLICT")
        os.unlink(exif)
        os.symlink("/etc/php/%s/mods-available/exif.ini" % VERSION, exif)
        expect_error(e.call("php.ext.disable", ext("exif")), "CONFLICT")
        assert os.readlink(exif) == "/etc/php/%s/mods-available/exif.ini" % VERSION
    finally:
        os.unlink(exif)
        os.symlink(os.path.join(e.fpm.mods, "exif.ini"), exif)
    e.expect_no_reload(u0, n0)


@test
def versions_installed_and_served():
    e = env()
    r = expect_ok(e.call("php.versions"))
    assert r["versions"] == [
        {"version": "7.4", "installed": False, "served": False},
        {"version": "8.2", "installed": True, "served": True},
    ], r
    assert r["changed"] is False


@test
def test_and_reload():
    e = env()
    r = expect_ok(e.call("php.test"))
    assert r["valid"] is True and r["changed"] is False, r
    e.settle()
    n0 = e.reload_count()
    r = expect_ok(e.apply("php.reload", {"php_version": VERSION}))
    assert r["reloaded"] is True and r["versions"] == [VERSION], r
    assert e.reload_count() == n0 + 1, "php.reload did not wait for its reload"
    r = expect_ok(e.apply("php.reload"))
    assert r["versions"] == [VERSION], r
    assert e.reload_count() == n0 + 2
    assert e.run_id()[0] == str(e.uid)
    u0, n0 = e.settle(), e.reload_count()
    expect_error(e.call("php.reload", {"php_version": "7.4"}), "INVALID_PARAMS")
    expect_error(e.call("php.reload", {"php_version": "8.2;x"}), "INVALID_PARAMS")
    e.expect_no_reload(u0, n0)


@test
def list_get_and_foreign_files():
    e = env()
    r = expect_ok(e.call("php.pool.list"))
    assert [(p["user"], p["php_version"]) for p in r["pools"]] == [(e.user, VERSION)], r
    expect_error(e.call("php.pool.get", {"user": "nosuchpool", "php_version": VERSION}), "NOT_FOUND")
    foreign = os.path.join(e.pool_dir, "jabali-foreign.conf")
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
    assert not os.path.lexists(os.path.join(e.pool_dir, "jabali-%s.conf" % e.user))
    assert not os.path.lexists(e.socket), "php-fpm kept the removed pool's socket"
    assert os.path.isdir(os.path.join(e.home, "tmp")), "the account's files went with the pool"
    u0, n0 = e.settle(), e.reload_count()
    r = expect_ok(e.call("php.pool.delete", {"user": e.user, "php_version": VERSION}))
    assert r["changed"] is False and r["plan"] == [], r
    e.expect_no_reload(u0, n0)
    assert expect_ok(e.call("php.pool.list"))["pools"] == []


def main():
    agenttest.suite("php module", "root and %s (Debian package php%s-fpm)" % (FPM, VERSION), have_php_fpm(),
                    lambda: ENV)


if __name__ == "__main__":
    main()
