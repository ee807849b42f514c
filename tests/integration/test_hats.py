"""Entering the module's AppArmor hat: once per worker, before no_new_privs,
and what each apparmor.mode does when the hat can or cannot be entered.

The test machines have no AppArmor, so libapparmor is replaced in the
workers by tests/shim/aa-shim.so (LD_PRELOAD): it answers aa_is_enabled()
and aa_change_hat() as each test asks and logs every call with the state
the kernel would judge (no_new_privs, thread count). The master passes
LD_PRELOAD and the JABALI_SHIM_* variables on to its workers; everything
else in a worker's environment is scrubbed."""

import atexit
import json
import os
import shlex
import shutil
import subprocess
import tempfile

from agenttest import BUILDDIR, SRCDIR, Agent, expect_error, expect_ok, run, test

TRANSITIONS = {"aa_change_hat", "aa_change_hatv", "aa_change_profile", "aa_change_onexec",
               "aa_stack_profile", "aa_stack_onexec"}

_shim = None


def shim():
    """The shim library: the one the build made, else compiled here once."""
    global _shim
    if _shim:
        return _shim
    built = os.path.join(BUILDDIR, "tests", "shim", ".libs", "aa-shim.so")
    if os.path.exists(built):
        _shim = built
        return _shim
    out = tempfile.mkdtemp(prefix="jabali-shim-")
    atexit.register(shutil.rmtree, out, True)
    so = os.path.join(out, "aa-shim.so")
    cc = shlex.split(os.environ.get("CC") or "cc")
    subprocess.run(cc + ["-shared", "-fPIC", "-o", so, os.path.join(SRCDIR, "tests", "shim", "aa-shim.c")],
                   check=True)
    _shim = so
    return _shim


class Shim:
    """One test's shim settings and log."""

    def __init__(self, aa="enabled", change_hat="ok"):
        self.dir = tempfile.mkdtemp(prefix="jabali-shim-log-")
        self.log = os.path.join(self.dir, "calls.jsonl")
        # A sanitizer runtime insists on coming first in the library list;
        # a preloaded library that is not instrumented is fine here.
        asan = os.environ.get("ASAN_OPTIONS", "")
        self.env = {
            "LD_PRELOAD": shim(),
            "JABALI_SHIM_AA": aa,
            "JABALI_SHIM_AA_CHANGE_HAT": change_hat,
            "JABALI_SHIM_LOG": self.log,
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
        }

    def calls(self):
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def record(a, request_id):
    recs = [r for r in a.audit() if r.get("request_id") == request_id]
    assert len(recs) == 1, "want one audit record for %s, got %r" % (request_id, recs)
    return recs[0]


def module_health(a):
    return expect_ok(a.call("agent.health"))["modules"]["test"]


def assert_shim_in(pid):
    """The worker really runs with the shim: otherwise "no call" proves nothing."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    assert "aa-shim.so" in maps, (
        "worker %d does not have the shim loaded: the master must pass LD_PRELOAD and JABALI_SHIM_* "
        "to its workers (pool.c worker_env)" % pid)


def assert_hat_calls_sane(calls, master_pid):
    for c in calls:
        assert c["pid"] != master_pid, "the master itself called %s: %r" % (c["call"], c)
        assert c["call"] in TRANSITIONS | {"aa_is_enabled"}, c
    others = [c for c in calls if c["call"] in TRANSITIONS - {"aa_change_hat"}]
    assert not others, "transitions other than aa_change_hat: %r" % others
    for c in calls:
        if c["call"] == "aa_change_hat":
            assert c["hat"] == "test", c
            assert c["token_nonzero"] is True, "change_hat without a token: %r" % c
            assert c["nnp"] == 0, "no_new_privs was set before change_hat: %r" % c
            assert c["threads"] == 1, "change_hat while not single-threaded: %r" % c


def per_pid(calls, name):
    out = {}
    for c in calls:
        if c["call"] == name:
            out.setdefault(c["pid"], []).append(c)
    return out


@test
def enforce_enters_the_hat_once_per_worker_before_nnp():
    with Shim(aa="enabled", change_hat="ok") as s, \
            Agent(apparmor={"mode": "enforce"}, modules={"test": {"workers": {"max": 2}}}, env=s.env) as a:
        # Two requests at once: the pool grows to two workers.
        c1, c2 = a.client(), a.client()
        c1.send("test.sleep", {"ms": 300}, request_id="sleep-1")
        c2.send("test.sleep", {"ms": 300}, request_id="sleep-2")
        sleeps = [expect_ok(c.recv()) for c in (c1, c2)]
        c1.close()
        c2.close()
        assert sleeps[0]["pid"] != sleeps[1]["pid"], sleeps
        echo = expect_ok(a.call("test.echo", {"n": 1}, request_id="echo-enforce"))

        rec = record(a, "echo-enforce")
        assert rec["result"] == "ok", rec
        assert rec["hat"] == "test" and rec["confinement"] == "apparmor+nnp", rec
        h = module_health(a)
        assert h["state"] == "ready" and h["hat"] == "test" and h["confinement"] == "apparmor+nnp", h

        calls = s.calls()
        assert_hat_calls_sane(calls, a.proc.pid)
        hats = per_pid(calls, "aa_change_hat")
        for pid in {sleeps[0]["pid"], sleeps[1]["pid"], echo["pid"]}:
            assert pid in hats, "worker %d never changed hat: %r" % (pid, calls)
        for pid, cs in hats.items():
            assert len(cs) == 1, "worker %d changed hat %d times: %r" % (pid, len(cs), cs)
            assert cs[0]["result"] == 0, cs
            # aa_is_enabled() is asked first, in the same worker.
            mine = [c["call"] for c in calls if c["pid"] == pid]
            assert mine == ["aa_is_enabled", "aa_change_hat"], (pid, mine)


@test
def enforce_without_apparmor_refuses_and_never_changes_hat():
    with Shim(aa="disabled") as s, Agent(apparmor={"mode": "enforce"}, env=s.env) as a:
        e = expect_error(a.call("test.echo", {"n": 1}, request_id="echo-noaa"), "SANDBOX_UNAVAILABLE")
        assert "AppArmor is not enabled" in e["error"], e
        h = module_health(a)
        assert h["state"] == "failing" and h["code"] == "SANDBOX_UNAVAILABLE", h
        assert "AppArmor is not enabled" in h["reason"], h
        assert record(a, "echo-noaa")["result"] == "SANDBOX_UNAVAILABLE"
        calls = s.calls()
        assert calls and all(c["call"] == "aa_is_enabled" for c in calls), \
            "with AppArmor absent nothing but aa_is_enabled() may be called: %r" % calls
        assert all(c["result"] == 0 for c in calls), calls
        # The other actions of the agent still answer.
        expect_ok(a.call("agent.ping"))


@test
def enforce_hat_refused_is_sandbox_unavailable():
    for errno_name, text in (("EACCES", "Permission denied"), ("ENOENT", "No such file or directory")):
        with Shim(aa="enabled", change_hat=errno_name) as s, Agent(apparmor={"mode": "enforce"}, env=s.env) as a:
            rid = "echo-" + errno_name
            e = expect_error(a.call("test.echo", {"n": 1}, request_id=rid), "SANDBOX_UNAVAILABLE")
            assert "cannot enter hat ^test" in e["error"] and text in e["error"], e
            h = module_health(a)
            assert h["state"] == "failing" and h["code"] == "SANDBOX_UNAVAILABLE", h
            assert "cannot enter hat ^test" in h["reason"] and text in h["reason"], h
            assert "confinement" not in h, "no worker ever served, yet health reports %r" % h
            assert record(a, rid)["result"] == "SANDBOX_UNAVAILABLE"
            assert "cannot enter hat ^test" in a.log(), a.log()
            calls = s.calls()
            assert_hat_calls_sane(calls, a.proc.pid)
            hats = [c for c in calls if c["call"] == "aa_change_hat"]
            assert hats, "no worker tried to enter its hat: %r" % calls
            assert all(c["result"] == -1 for c in hats), hats
            expect_ok(a.call("agent.ping"))


@test
def complain_hat_refused_serves_with_nnp_only():
    with Shim(aa="enabled", change_hat="EACCES") as s, Agent(apparmor={"mode": "complain"}, env=s.env) as a:
        echo = expect_ok(a.call("test.echo", {"n": 1}, request_id="echo-complain"))
        rec = record(a, "echo-complain")
        assert rec["result"] == "ok" and rec["hat"] == "test" and rec["confinement"] == "nnp", rec
        h = module_health(a)
        assert h["state"] == "ready" and h["confinement"] == "nnp", h
        log = a.log()
        assert "cannot enter hat ^test: Permission denied" in log and "apparmor.mode = complain" in log, log
        calls = s.calls()
        assert_hat_calls_sane(calls, a.proc.pid)
        hats = per_pid(calls, "aa_change_hat")
        assert len(hats.get(echo["pid"], [])) == 1, calls


@test
def complain_hat_entered_is_apparmor_nnp():
    with Shim(aa="enabled", change_hat="ok") as s, Agent(apparmor={"mode": "complain"}, env=s.env) as a:
        echo = expect_ok(a.call("test.echo", {"n": 1}, request_id="echo-complain-ok"))
        rec = record(a, "echo-complain-ok")
        assert rec["confinement"] == "apparmor+nnp", rec
        calls = s.calls()
        assert_hat_calls_sane(calls, a.proc.pid)
        assert len(per_pid(calls, "aa_change_hat").get(echo["pid"], [])) == 1, calls


@test
def off_never_calls_libapparmor():
    with Shim(aa="enabled", change_hat="ok") as s, Agent(apparmor={"mode": "off"}, env=s.env) as a:
        echo = expect_ok(a.call("test.echo", {"n": 1}, request_id="echo-off"))
        assert_shim_in(echo["pid"])
        rec = record(a, "echo-off")
        assert rec["result"] == "ok" and rec["confinement"] == "nnp", rec
        assert module_health(a)["confinement"] == "nnp"
        assert s.calls() == [], "apparmor.mode = off, yet libapparmor was called: %r" % s.calls()


if __name__ == "__main__":
    run()
