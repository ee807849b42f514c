#!/usr/bin/env python3
"""backup.run jobs as stages, their progress, cancel and death, against
Debian's restic.

- paths[] and tags{}: one stage and one snapshot per path, tagged;
- a path through a symbolic link the account planted is not followed
  (the home is read through a no-symlink view): nothing outside the home
  gets into a snapshot;
- progress rises while a few hundred MB are saved, and `jabali-agentctl
  job watch` follows it to the end;
- cancel mid-backup: restic stops, no snapshot stays, the repository
  checks clean and holds no lock;
- the agent and the job's runner killed with SIGKILL mid-backup (what
  systemd's KillMode does to the agent's cgroup): after a restart the job
  is interrupted, the restic left running is killed, its lock removed, and
  `restic check` passes.

Each waits on the job record or on restic's own state, never on time.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import CTL, executable, expect_error, expect_ok, test  # noqa: E402
from test_backup import RESTIC, TERMINAL, Env, finished, initialised  # noqa: E402

del agenttest._tests[:]        # test_backup's own cases run in their own file

WAIT_S = 120
ENV = None
BIG_MB = 320


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


def poll(what, fn, timeout=WAIT_S):
    """fn() until it returns something true; a short pause between asks
    keeps the agent from being hammered (the condition is what is waited
    for, not the time)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def job(e, job_id):
    return expect_ok(e.call("backup.job.get", {"job_id": job_id}))["job"]


def big_tree(a, name, mb=BIG_MB):
    """mb MB of incompressible data in 32 files, new each time (so restic
    cannot deduplicate it against an earlier run)."""
    for i in range(32):
        a.put("%s/f%02d.bin" % (name, i), "", mode=0o600)
        with open(os.path.join(a.home, name, "f%02d.bin" % i), "wb") as f:
            f.write(os.urandom(mb * 1024 * 1024 // 32))


def snapshots(e, repo, *tags):
    args = ["snapshots", "--json"]
    for t in tags:
        args += ["--tag", t]
    return json.loads(e.restic(repo, *args).stdout)


def restic_check(e, repo):
    r = e.restic(repo, "check")
    assert r.returncode == 0 and "no errors were found" in r.stdout, r.stdout + r.stderr


@test
def paths_and_tags_are_stages():
    e = env()
    initialised(e, "j1")
    a = e.account()
    a.put("docs/a.txt", "alpha\n")
    a.put("site/public/index.html", "<p>x</p>\n")
    d = e.dest("j1")
    r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name, "home": False,
                                        "paths": ["docs", "site/public"], "tags": {"reason": "manual"}}))
    j = finished(e, r["job_id"])
    assert j["state"] == "succeeded", j
    assert [s["name"] for s in j["stages"]] == ["path:docs", "path:site/public"], j
    repo = d["location"]
    for s, rel in zip(j["stages"], ["docs", "site/public"]):
        snap = [x for x in snapshots(e, repo, "jabali-job=" + r["job_id"]) if x["short_id"] == s["snapshot_id"]]
        assert len(snap) == 1 and snap[0]["paths"] == [os.path.join(a.home, rel)], snap
        assert "reason=manual" in snap[0]["tags"] and "jabali-stage=path" in snap[0]["tags"], snap
    # As many tags as the schema takes, on a database-free path stage.
    many = {"k%02d" % i: "v%d" % i for i in range(16)}
    r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name, "home": False, "paths": ["docs"],
                                        "tags": many}))
    j = finished(e, r["job_id"])
    assert j["state"] == "succeeded", j
    snap = snapshots(e, repo, "jabali-job=" + r["job_id"])
    assert len(snap) == 1 and all("%s=%s" % kv in snap[0]["tags"] for kv in many.items()), snap
    for bad in ({"paths": ["../etc"]}, {"paths": ["/etc"]}, {"paths": ["a//b"]}, {"tags": {"user": "x"}},
                {"tags": {"jabali-job": "x"}}, {"tags": {"k": "a,b"}}, {"home": False},
                {"home": False, "paths": []}):
        p = {"destination": d, "user": a.name}
        p.update(bad)
        expect_error(e.call("backup.run", p), "INVALID_PARAMS")


@test
def a_planted_symlink_is_not_followed():
    e = env()
    initialised(e, "j2")
    a = e.account()
    outside = os.path.join(e.t, "outside")
    os.makedirs(outside, exist_ok=True)
    with open(os.path.join(outside, "canary"), "w") as f:
        f.write("root's secret\n")
    os.chmod(outside, 0o700)
    link = os.path.join(a.home, "escape")
    os.symlink(outside, link)
    os.lchown(link, a.uid, a.gid)
    d = e.dest("j2")
    # The path goes through the account's link: as root, a plain restic
    # would save root's file. Through the view the link is not followed.
    r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name, "paths": ["escape/canary"]}))
    j = finished(e, r["job_id"])
    assert j["state"] == "failed", j
    assert [s["state"] for s in j["stages"]] == ["succeeded", "failed"], j
    # The home's snapshot holds the link as a link, and nothing of its target.
    home_snap = j["stages"][0]["snapshot_id"]
    ls = e.restic(d["location"], "ls", "--json", home_snap).stdout.splitlines()
    nodes = [json.loads(x) for x in ls if x.startswith("{")]
    names = {n.get("name"): n for n in nodes if n.get("struct_type") == "node"}
    assert names["escape"]["type"] == "symlink", names["escape"]
    assert "canary" not in names, "the link was followed"
    assert snapshots(e, d["location"], "jabali-stage=path") == [], "a snapshot of the escaped path stayed"
    os.unlink(link)


@test
def progress_rises_and_watch_follows_it():
    e = env()
    initialised(e, "j3")
    a = e.account()
    big_tree(a, "big")
    d = e.dest("j3")
    r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name, "home": False, "paths": ["big"]}))
    watch = subprocess.Popen([CTL, "--socket", e.agent.sock_path, "job", "watch", r["job_id"]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tty = TtyWatch(e, r["job_id"])
    seen = []

    def progressed():
        j = job(e, r["job_id"])
        p = j.get("progress", {}).get("percent_done")
        if j["state"] == "running" and p is not None and 0 < p < 1 and (not seen or p > seen[-1]):
            seen.append(p)
        return j if j["state"] in TERMINAL else None
    j = poll("the job to end", progressed)
    out, err = watch.communicate(timeout=WAIT_S)
    assert j["state"] == "succeeded", j
    assert len(seen) >= 2, "progress did not rise while running: %r" % seen
    assert j["progress"]["percent_done"] == 1 and j["progress"]["bytes_done"] >= BIG_MB * 1024 * 1024, j
    # Not a terminal: one line per change, the last one the end.
    lines = out.strip().splitlines()
    assert watch.returncode == 0, (out, err)
    assert lines[-1] == "succeeded 1 stage", lines
    assert any(x.startswith("running path:big ") and "%" in x for x in lines), lines
    # On a terminal: one line redrawn in place, with a bar, ending on the state.
    rc, screen = tty.finish()
    assert rc == 0, screen
    assert "\r\x1b[K" in screen, screen
    bars = re.findall(r"\[([#-]{24})\]", screen)         # CTL_BAR_WIDTH
    assert any("#" in b and "-" in b for b in bars), screen
    assert screen.endswith("\r\x1b[Ksucceeded 1 stage\r\n"), screen[-200:]
    expect_error(e.call("backup.job.get", {"job_id": "0" * 32}), "NOT_FOUND")
    rc = subprocess.run([CTL, "--socket", e.agent.sock_path, "job", "watch", "0" * 32],
                        capture_output=True, text=True).returncode
    assert rc == 1
    shutil.rmtree(os.path.join(a.home, "big"))


class TtyWatch:
    """`jabali-agentctl job watch` with a pseudo-terminal as its stdout,
    read as it writes (a full pty would stall it)."""

    def __init__(self, e, job_id):
        master, slave = os.openpty()
        self.proc = subprocess.Popen([CTL, "--socket", e.agent.sock_path, "job", "watch", job_id],
                                     stdout=slave, stderr=subprocess.STDOUT)
        os.close(slave)
        self.master = master
        self.out = bytearray()
        self.reader = threading.Thread(target=self.read)
        self.reader.start()

    def read(self):
        while True:
            try:
                b = os.read(self.master, 4096)
            except OSError:         # EIO: the last writer closed the terminal
                return
            if not b:
                return
            self.out += b

    def finish(self):
        rc = self.proc.wait(WAIT_S)
        self.reader.join(WAIT_S)
        os.close(self.master)
        return rc, self.out.decode(errors="replace")


def running_with_bytes(e, job_id):
    def ready():
        j = job(e, job_id)
        assert j["state"] in ("queued", "running"), j
        return j if j.get("progress", {}).get("bytes_done", 0) > 0 else None
    return poll("restic to be saving", ready)


def no_locks(repo):
    return os.listdir(os.path.join(repo, "locks")) == []


@test
def cancel_stops_restic_and_leaves_no_snapshot():
    e = env()
    initialised(e, "j4")
    a = e.account()
    big_tree(a, "big4")
    d = e.dest("j4")
    r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name, "home": False,
                                        "paths": ["big4", "big4"]}))
    running_with_bytes(e, r["job_id"])
    c = expect_ok(e.call("backup.job.cancel", {"job_id": r["job_id"]}))
    assert c["changed"] is True, c
    j = finished(e, r["job_id"])
    assert j["state"] == "cancelled" and j["error"]["code"] == "JOB_CANCELLED", j
    assert [s["state"] for s in j["stages"]] == ["cancelled"], "a stage began after the cancel: %r" % j
    assert snapshots(e, d["location"], "jabali-job=" + r["job_id"]) == []
    assert no_locks(d["location"]), "restic left its lock"
    restic_check(e, d["location"])
    # Cancelling an ended job changes nothing.
    again = expect_ok(e.call("backup.job.cancel", {"job_id": r["job_id"]}))
    assert again["changed"] is False and again["state"] == "cancelled", again
    shutil.rmtree(os.path.join(a.home, "big4"))


def proc_stat(pid):
    """The fields of /proc/<pid>/stat after the command (state first), or
    None when the process is gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def session_members(sid):
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and (proc_stat(p) or [0] * 4)[3] == str(sid)]


@test
def a_killed_agent_leaves_an_interrupted_job_and_a_clean_repository():
    e = env()
    initialised(e, "j5")
    a = e.account()
    big_tree(a, "big5")
    d = e.dest("j5")
    r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name, "home": False, "paths": ["big5"]}))
    j = running_with_bytes(e, r["job_id"])
    sid = j["sid"]
    # What KillMode= does to the agent's cgroup: the agent and the runner
    # die at once; restic, in the runner's session, is left behind.
    e.agent.kill()
    os.kill(j["pid"], signal.SIGKILL)
    # The signal is delivered, not yet acted on, when kill() returns.
    poll("the runner to die", lambda: (proc_stat(j["pid"]) or ["X"])[0] in ("Z", "X"))
    left = [p for p in session_members(sid) if p != j["pid"]]
    assert left, "restic was not running"
    assert os.listdir(os.path.join(d["location"], "locks")), "no lock to go stale"
    e.agent.start()
    e.agent.killed = False
    j = job(e, r["job_id"])
    assert j["state"] == "interrupted" and j["error"]["code"] == "JOB_INTERRUPTED", j
    assert j.get("stale_locks_removed") is True, j
    poll("the left restic to be gone", lambda: not [p for p in left if os.path.exists("/proc/%d" % p)])
    assert no_locks(d["location"]), "the stale lock stayed"
    restic_check(e, d["location"])
    checked = expect_ok(e.call("backup.check", {"destination": d}))
    assert checked["ok"] is True, checked
    assert snapshots(e, d["location"], "jabali-job=" + r["job_id"]) == []
    shutil.rmtree(os.path.join(a.home, "big5"))


def main():
    agenttest.suite("backup jobs", "root and restic (tools/deps test)", executable(RESTIC), lambda: ENV)


if __name__ == "__main__":
    main()
