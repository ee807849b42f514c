#!/usr/bin/env python3
"""backup.restore (files) against Debian's restic.

A real account's home is backed up with backup.run and restored through
the agent, to staging and in place; the restored tree is compared with
the original by diff -r and by a walk of modes, mtimes, link targets and
owners. Hostile snapshots are made with restic itself from trees outside
the home, tagged so that they map onto it: an absolute symbolic link to a
directory outside (holding a canary file), and, from a second snapshot, a
directory of the same name holding files. Nothing outside the home may be
written or followed.

restic's command line cannot store an entry named `..` (it archives what
a directory holds, and no directory holds such a name), so the nearest
thing is tested: a file named `..foo`, and `..` in paths[] refused.

Needs root and restic; without them a single skipped case (TAP SKIP).
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
import test_backup as tb  # noqa: E402
from agenttest import executable, expect_error, expect_ok, test  # noqa: E402
from webstack import Account  # noqa: E402

# test_backup's own cases registered themselves on import: not ours to run.
del agenttest._tests[:]

STAGING = ".jabali-restore"
ENV = None
MTIME_2020 = 1590000000
# A job's deadline: generous, for a machine busy with other test runs.
JOB_S = 120


def finished(e, job_id):
    def done():
        job = expect_ok(e.call("backup.job.get", {"job_id": job_id}))["job"]
        return job if job["state"] in tb.TERMINAL else None
    return tb.wait_for("job " + job_id, done, timeout=JOB_S)


class Env(tb.Env):
    def setup(self):
        super().setup()
        self.outside = os.path.join(self.t, "outside")
        os.makedirs(self.outside)
        with open(os.path.join(self.outside, "canary"), "w") as f:
            f.write("canary\n")
        self.others = []

    def other_account(self, prefix):
        a = Account(prefix, os.path.join(self.t, "home"))
        self.others.append(a)
        return a

    def close(self):
        for a in self.others:
            a.remove()
        super().close()


def env():
    global ENV
    if ENV is None:
        ENV = Env()
        tb.initialised(ENV, "main")
    return ENV


def outside_state(e):
    return tb_snapshot(e.outside)


def tb_snapshot(top):
    """path -> (mode, mtime_ns, bytes or link target) of everything beneath top."""
    out = {}
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if os.path.islink(p):
                body = os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    body = f.read()
            else:
                body = None
            out[os.path.relpath(p, top)] = (st.st_mode, st.st_mtime_ns, body, st.st_uid, st.st_gid)
    return out


def tree(top, skip=STAGING):
    """Like tb_snapshot, without the staging directory."""
    return {k: v for k, v in tb_snapshot(top).items() if k != skip and not k.startswith(skip + "/")}


def populate(a):
    a.put("public_html/index.html", "<h1>hi</h1>\n")
    a.put("public_html/deep/er/still/file.txt", "deep\n")
    a.put("secret.txt", "s" * 3000, mode=0o600)
    a.put("dir with space/ünïcødé файл.txt", "non-ascii\n")
    old = a.put("old/2020.txt", "from 2020\n")
    os.utime(old, (MTIME_2020, MTIME_2020))
    os.utime(os.path.dirname(old), (MTIME_2020, MTIME_2020))
    a.put("..foo", "dots\n")
    link = os.path.join(a.home, "public_html", "link")
    os.symlink("deep/er/still/file.txt", link)
    os.lchown(link, a.uid, a.gid)


def backup(e, a):
    r = expect_ok(e.call("backup.run", {"destination": e.dest("main"), "user": a.name}))
    job = finished(e, r["job_id"])
    assert job["state"] == "succeeded", job
    snaps = json.loads(e.restic(e.dest("main")["location"], "snapshots", "--json").stdout)
    return [s["id"] for s in snaps if s["short_id"] == job["stages"][0]["snapshot_id"]][0]


def restore(e, a, snap, **kw):
    p = {"destination": e.dest("main"), "user": a.name, "snapshot_id": snap}
    p.update(kw)
    r = expect_ok(e.call("backup.restore", p))
    assert r["changed"] is True and r["state"] == "queued" and len(r["job_id"]) == 32, r
    job = finished(e, r["job_id"])
    assert job["kind"] == "restore" and job["stages"][0]["name"] == "files", job
    return job


def assert_owned(top, a):
    for d, dirs, files in os.walk(top):
        for n in dirs + files + ["."]:
            st = os.lstat(os.path.join(d, n))
            assert (st.st_uid, st.st_gid) == (a.uid, a.gid), (os.path.join(d, n), st.st_uid)


def no_leftovers(a, job_id):
    stg = os.path.join(a.home, STAGING)
    left = os.listdir(stg) if os.path.isdir(stg) else []
    assert not [n for n in left if job_id in n], left


def hostile_snapshot(e, a, name, build):
    """A tree built outside the home, backed up with restic itself and
    tagged as the account's home stage, so that it maps onto the home."""
    top = os.path.join(e.t, name)
    os.makedirs(top)
    build(top)
    b = e.restic(e.dest("main")["location"], "backup", "--json", "--tag", "user=" + a.name,
                 "--tag", "jabali-stage=home", top)
    assert b.returncode == 0, b.stderr
    return json.loads(b.stdout.strip().splitlines()[-1])["snapshot_id"]


@test
def staging_restores_an_identical_tree():
    e = env()
    a = e.account()
    populate(a)
    before = tree(a.home)
    snap = backup(e, a)
    job = restore(e, a, snap)
    assert job["state"] == "succeeded", job
    st = job["stages"][0]
    assert st["staging_path"] == STAGING + "/" + job["job_id"] and st["refused"] == [], st
    out = os.path.join(a.home, st["staging_path"])
    d = subprocess.run(["diff", "-r", "--no-dereference", "-x", STAGING, a.home, out], capture_output=True, text=True)
    assert d.returncode == 0, d.stdout + d.stderr
    after = tree(out)
    assert set(after) == set(before), set(after) ^ set(before)
    for k, v in before.items():
        assert after[k][:3] == v[:3], (k, after[k], v)
    assert after["old/2020.txt"][1] == MTIME_2020 * 10**9
    assert oct(after["secret.txt"][0] & 0o777) == "0o600"
    assert_owned(out, a)
    assert not [n for n in os.listdir(os.path.join(a.home, STAGING)) if n.startswith(".work-")]
    # A dry run starts nothing; a snapshot id that is not hex is refused.
    dry = expect_ok(e.call("backup.restore", {"destination": e.dest("main"), "user": a.name, "snapshot_id": snap},
                           dry_run=True))
    assert dry["changed"] is True and "job_id" not in dry, dry
    for bad in ("ABCDEF12", "abc", "g" * 8, "a" * 63):
        expect_error(e.call("backup.restore", {"destination": e.dest("main"), "user": a.name, "snapshot_id": bad}),
                     "INVALID_PARAMS")
    shutil.rmtree(out)


@test
def in_place_puts_the_home_back():
    e = env()
    a = e.account()
    snap = backup(e, a)
    before = tree(a.home)
    os.unlink(os.path.join(a.home, "secret.txt"))
    shutil.rmtree(os.path.join(a.home, "public_html", "deep"))
    a.put("public_html/index.html", "changed\n")
    a.put("new-since.txt", "stays\n")
    job = restore(e, a, snap, mode="in_place")
    assert job["state"] == "succeeded", job
    st = job["stages"][0]
    assert "secret.txt" in st["restored"] and "public_html/deep" in st["restored"], st
    after = tree(a.home)
    assert after.pop("new-since.txt")[2] == b"stays\n", "a file the snapshot lacks was touched"
    for k, v in before.items():
        assert after[k][0] == v[0] and after[k][2] == v[2], (k, after[k], v)
    assert set(after) == set(before), set(after) ^ set(before)
    assert_owned(os.path.join(a.home, "public_html"), a)
    assert not os.path.exists(os.path.join(a.home, STAGING, "." + job["job_id"]))


@test
def paths_restore_only_those():
    e = env()
    a = e.account()
    snap = backup(e, a)
    job = restore(e, a, snap, paths=["public_html/deep", "dir with space/ünïcødé файл.txt"])
    assert job["state"] == "succeeded", job
    out = os.path.join(a.home, job["stages"][0]["staging_path"])
    got = sorted(tree(out))
    assert got == ["dir with space", "dir with space/ünïcødé файл.txt", "public_html", "public_html/deep",
                   "public_html/deep/er", "public_html/deep/er/still", "public_html/deep/er/still/file.txt"], got
    shutil.rmtree(out)
    # A path holding nothing in the snapshot fails, and leaves nothing.
    job = restore(e, a, snap, paths=["no/such"])
    assert job["state"] == "failed" and job["error"]["code"] == "NOT_FOUND", job
    no_leftovers(a, job["job_id"])
    # A glob character is a name, not a pattern.
    a.put("st*r", "star\n")
    a.put("stxr", "x\n")
    job = restore(e, a, backup(e, a), paths=["st*r"])
    assert sorted(tree(os.path.join(a.home, job["stages"][0]["staging_path"]))) == ["st*r"], job
    for bad in ("../etc", "a/../../x", "/etc", "./x"):
        expect_error(e.call("backup.restore", {"destination": e.dest("main"), "user": a.name, "snapshot_id": snap,
                                               "paths": [bad]}), "INVALID_PARAMS")


@test
def another_accounts_snapshot_is_not_found():
    e = env()
    a = e.account()
    other = os.path.join(e.t, "other-data")
    os.makedirs(other, exist_ok=True)
    with open(os.path.join(other, "theirs"), "w") as f:
        f.write("not yours\n")
    b = e.restic(e.dest("main")["location"], "backup", "--json", "--tag", "user=someoneelse", other)
    assert b.returncode == 0, b.stderr
    sid = json.loads(b.stdout.strip().splitlines()[-1])["snapshot_id"]
    before = tree(a.home)
    for s in (sid, "0badc0de"):
        expect_error(e.call("backup.restore", {"destination": e.dest("main"), "user": a.name, "snapshot_id": s}),
                     "NOT_FOUND")
    assert tree(a.home) == before
    expect_error(e.call("backup.restore", {"destination": e.dest("main"), "user": "jbknosuchuser",
                                           "snapshot_id": sid}), "NOT_FOUND")


@test
def hostile_snapshots_write_nothing_outside():
    e = env()
    a = e.account()
    outside = e.outside
    seen = outside_state(e)

    def links(top):
        os.symlink(outside, os.path.join(top, "etc"))
        os.symlink("/etc", os.path.join(top, "sys-etc"))
        os.symlink("../../outside/canary", os.path.join(top, "rel-out"))

    def same_names(top):
        os.makedirs(os.path.join(top, "etc"))
        for n in ("passwd", "canary"):
            with open(os.path.join(top, "etc", n), "w") as f:
                f.write("pwned\n")
        os.makedirs(os.path.join(top, "sys-etc"))
        with open(os.path.join(top, "sys-etc", "jabali-restore-test"), "w") as f:
            f.write("pwned\n")
        with open(os.path.join(top, "rel-out"), "w") as f:
            f.write("pwned\n")

    s1 = hostile_snapshot(e, a, "hostile1", links)
    s2 = hostile_snapshot(e, a, "hostile2", same_names)
    # Staging: each lands in its own directory, links stay links.
    for s in (s1, s2):
        job = restore(e, a, s)
        assert job["state"] == "succeeded", job
        out = os.path.join(a.home, job["stages"][0]["staging_path"])
        assert_owned(out, a)
        if s == s1:
            assert os.readlink(os.path.join(out, "etc")) == outside and os.readlink(os.path.join(out, "sys-etc")) == "/etc"
        else:
            assert open(os.path.join(out, "etc", "passwd")).read() == "pwned\n"
    # In place: the links first, then directories of the same names.
    job = restore(e, a, s1, mode="in_place")
    assert job["state"] == "succeeded", job
    assert os.readlink(os.path.join(a.home, "etc")) == outside
    job = restore(e, a, s2, mode="in_place")
    st = job["stages"][0]
    assert job["state"] == "partial" and job["error"]["code"] == "RESTORE_PARTIAL", job
    refused = {r["path"]: r["reason"] for r in st["refused"]}
    assert refused == {"etc": "a symbolic link is in the way", "sys-etc": "a symbolic link is in the way"}, st
    # A file over a link replaces the link, never writes through it.
    assert "rel-out" in st["restored"] and not os.path.islink(os.path.join(a.home, "rel-out"))
    assert outside_state(e) == seen, "something outside the home changed"
    # (/etc's mtime is no witness: other accounts come and go meanwhile.)
    assert not os.path.exists("/etc/jabali-restore-test")
    with open("/etc/passwd") as f:
        assert "pwned" not in f.read()
    no_leftovers(a, job["job_id"])


@test
def device_nodes_are_not_handed_over():
    e = env()
    a = e.account()

    def devices(top):
        os.mknod(os.path.join(top, "disk"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        with open(os.path.join(top, "plain"), "w") as f:
            f.write("plain\n")
    s = hostile_snapshot(e, a, "hostile-dev", devices)
    for mode in ("staging", "in_place"):
        job = restore(e, a, s, mode=mode)
        st = job["stages"][0]
        assert job["state"] == "partial" and st["refused"] == [{"path": "disk", "reason": "a device node"}], job
        where = os.path.join(a.home, st["staging_path"]) if mode == "staging" else a.home
        assert os.path.isfile(os.path.join(where, "plain")) and not os.path.lexists(os.path.join(where, "disk"))


@test
def a_symlinked_staging_dir_or_home_is_a_conflict():
    e = env()
    a = e.account()
    snap = backup(e, a)
    stg = os.path.join(a.home, STAGING)
    shutil.rmtree(stg, ignore_errors=True)
    os.symlink(e.outside, stg)
    os.lchown(stg, a.uid, a.gid)
    seen = outside_state(e)
    try:
        for mode in ("staging", "in_place"):
            expect_error(e.call("backup.restore", {"destination": e.dest("main"), "user": a.name,
                                                   "snapshot_id": snap, "mode": mode}), "CONFLICT")
        assert outside_state(e) == seen
    finally:
        os.unlink(stg)
    # An account whose home is a symbolic link.
    b = e.other_account("jbs")
    real = b.home + ".real"
    os.rename(b.home, real)
    os.symlink(e.outside, b.home)
    r = e.restic(e.dest("main")["location"], "backup", "--json", "--tag", "user=" + b.name, real)
    assert r.returncode == 0, r.stderr
    sid = json.loads(r.stdout.strip().splitlines()[-1])["snapshot_id"]
    expect_error(e.call("backup.restore", {"destination": e.dest("main"), "user": b.name, "snapshot_id": sid}),
                 "CONFLICT")
    assert outside_state(e) == seen
    os.unlink(b.home)
    os.rename(real, b.home)


@test
def cancel_stops_restic_and_leaves_nothing():
    e = env()
    a = e.other_account("jbc")
    for i in range(3):
        p = a.put("big/%d.bin" % i, "")
        with open(p, "wb") as f:
            f.write(os.urandom(100 << 20))
    snap = backup(e, a)
    shutil.rmtree(os.path.join(a.home, "big"))
    r = expect_ok(e.call("backup.restore", {"destination": e.dest("main"), "user": a.name, "snapshot_id": snap,
                                            "mode": "in_place"}))
    work = os.path.join(a.home, STAGING, ".work-" + r["job_id"])

    def restic_writing():
        for d, _, files in os.walk(work):
            if any(os.lstat(os.path.join(d, f)).st_size > 0 for f in files):
                return True
        time.sleep(0.01)
        return False
    tb.wait_for("restic writing the restore", restic_writing)
    c = expect_ok(e.call("backup.job.cancel", {"job_id": r["job_id"]}))
    job = finished(e, r["job_id"])
    assert c["state"] == "cancelled" and job["state"] == "cancelled", (c, job)
    assert job["error"]["code"] == "JOB_CANCELLED", job
    assert not os.path.exists(os.path.join(a.home, "big")), "a cancelled restore moved files in"
    assert not os.path.exists(os.path.join(a.home, STAGING)), os.listdir(os.path.join(a.home, STAGING))
    # No lock is left (a stale one would refuse the next prune or check),
    # and the repository is usable.
    assert os.listdir(os.path.join(e.dest("main")["location"], "locks")) == [], "restic's lock was left"
    assert restore(e, a, snap, paths=["big/0.bin"])["state"] == "succeeded"


def main():
    agenttest.suite("backup.restore", "root and restic (tools/deps test)", executable(tb.RESTIC), lambda: ENV)


if __name__ == "__main__":
    main()
