#!/usr/bin/env python3
"""Backups that cannot be whole, against Debian's restic.

- A file restic cannot read: the account's home is a filesystem on which
  reading one file fails with EIO (eiofs.py, FUSE; what a bad sector or an
  NFS server squashing root does). restic exits 3 and writes a snapshot
  without that file. The job is `partial` with BACKUP_PARTIAL, never
  `succeeded`; the stage names the file; `job watch` does not exit 0; a
  job whose other stage succeeded is still partial.
- A full destination: the repository lives on a tmpfs too small for the
  backup. restic exits 1 with ENOSPC; the job is `failed` with DEST_FULL
  and no snapshot, the repository checks clean and holds no lock, and once
  there is room the same backup succeeds.
- A read-only destination (the repository bind-mounted read-only) and a
  password that opens no key: `failed` with DEST_READ_ONLY and
  REPO_WRONG_PASSWORD, no snapshot; then the same job succeeds.

Needs root, restic, /dev/fuse and Debian's python3-fusepy (root mounts through libfuse2 itself, no fusermount) (tools/deps test);
without them the file reports a single skipped case.
"""

import json
import os
import select
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import CTL, executable, expect_ok, test  # noqa: E402
from test_backup import RESTIC, Env, finished, initialised  # noqa: E402
from webstack import Account  # noqa: E402

del agenttest._tests[:]        # test_backup's own cases run in their own file

# restic retries a refused write for about 45 s before it gives up.
WAIT_S = 120
ENV = None
EIOFS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eiofs.py")
DEBIAN_PYTHON = "/usr/bin/python3"       # the one python3-fusepy is installed for


def env():
    global ENV
    if ENV is None:
        # restic 0.14 can hang when a write to a full destination fails; it
        # is stopped once it has shown no progress this long.
        ENV = Env(stall_timeout_s=10)
    return ENV


def have_fuse():
    if not os.path.exists("/dev/fuse"):
        return False
    r = subprocess.run([DEBIAN_PYTHON, "-c", "import fusepy"], capture_output=True)
    return r.returncode == 0


class EioHome:
    """An account whose home is an eiofs mount; unmounted and removed by
    close() (the unmount ends eiofs)."""

    def __init__(self, e):
        homes = os.path.join(e.t, "home")
        os.makedirs(homes, exist_ok=True)
        self.acct = Account("jbf", homes)
        self.fs = subprocess.Popen([DEBIAN_PYTHON, EIOFS, self.acct.home, str(self.acct.uid), str(self.acct.gid)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.fs.stdout], [], [], WAIT_S)
        line = self.fs.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.fs.kill()
            why = line + self.fs.stderr.read()
            self.close()
            raise AssertionError("eiofs did not mount: %r" % why)

    def close(self):
        if self.fs.poll() is None:
            subprocess.run(["umount", self.acct.home], stderr=subprocess.DEVNULL)
            try:
                self.fs.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.fs.kill()
                self.fs.wait()
                subprocess.run(["umount", "-l", self.acct.home], stderr=subprocess.DEVNULL)
        self.fs.stdout.close()
        self.fs.stderr.close()
        self.acct.remove()


@test
def an_unreadable_file_makes_the_job_partial():
    e = env()
    initialised(e, "p1")
    d = e.dest("p1")
    h = EioHome(e)
    try:
        home = h.acct.home
        with open(os.path.join(home, "notes", "ok.txt")) as f:
            assert f.read().startswith("readable")
        r = expect_ok(e.call("backup.run", {"destination": d, "user": h.acct.name}))
        job = finished(e, r["job_id"], WAIT_S)
        assert job["state"] == "partial" and job["error"]["code"] == "BACKUP_PARTIAL", job
        assert "1 item " in job["error"]["message"], job
        stage = job["stages"][0]
        assert stage["state"] == "partial" and stage["exit_code"] == 3, stage
        assert stage["unreadable"] == [{"path": home + "/notes/bad.bin", "op": "read",
                                        "reason": "Input/output error"}], stage
        assert stage["unreadable_count"] == 1, stage
        # The snapshot stays, without the file restic could not read.
        snaps = json.loads(e.restic(d["location"], "snapshots", "--json", "--tag", "jabali-job=" + r["job_id"]).stdout)
        assert [s["short_id"] for s in snaps] == [stage["snapshot_id"]], snaps
        listed = e.restic(d["location"], "ls", stage["snapshot_id"]).stdout.splitlines()
        assert home + "/notes/ok.txt" in listed and home + "/index.html" in listed, listed
        assert home + "/notes/bad.bin" not in listed, listed
        # `job watch` ends on the state and does not call it success.
        w = subprocess.run([CTL, "--socket", e.agent.sock_path, "job", "watch", r["job_id"]],
                           capture_output=True, text=True, timeout=WAIT_S)
        assert w.returncode != 0 and w.stdout.strip().splitlines()[-1].startswith("partial"), (w.stdout, w.stderr)

        # One stage partial, one succeeded: the job is partial.
        r = expect_ok(e.call("backup.run", {"destination": d, "user": h.acct.name, "paths": ["index.html"]}))
        job = finished(e, r["job_id"], WAIT_S)
        states = {s["name"]: s["state"] for s in job["stages"]}
        assert states == {"home": "partial", "path:index.html": "succeeded"}, job
        assert job["state"] == "partial" and job["error"]["code"] == "BACKUP_PARTIAL", job
        assert "unreadable" not in job["stages"][1], job
    finally:
        h.close()


def tmpfs(path, mb):
    os.makedirs(path, mode=0o700, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % mb, "jabali-test", path], check=True)


def put_random(a, rel, size):
    path = a.put(rel, "", mode=0o600)
    with open(path, "wb") as f:
        f.write(os.urandom(size))


@test
def a_full_destination_fails_with_its_code():
    e = env()
    mnt = os.path.join(e.local_root, "small")
    tmpfs(mnt, 8)
    try:
        d = e.dest("small/repo")
        expect_ok(e.call("backup.destination.test", {"destination": d, "init": True}))
        a = e.account()
        put_random(a, "big/blob.bin", 24 << 20)
        r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name, "home": False, "paths": ["big"]}))
        job = finished(e, r["job_id"], WAIT_S)
        assert job["state"] == "failed" and job["error"]["code"] == "DEST_FULL", job
        assert "snapshot_id" not in job["stages"][0], job
        repo = d["location"]
        assert json.loads(e.restic(repo, "snapshots", "--json").stdout) == []
        assert os.listdir(os.path.join(repo, "locks")) == [], "restic left its lock"
        c = e.restic(repo, "check")
        assert c.returncode == 0 and "no errors were found" in c.stdout, c.stdout + c.stderr
        # Room again: the same backup succeeds on the same repository.
        subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
        r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name, "home": False, "paths": ["big"]}))
        job = finished(e, r["job_id"], WAIT_S)
        assert job["state"] == "succeeded", job
    finally:
        # Lazily if something (a restic this test failed to see end) holds it.
        if subprocess.run(["umount", mnt]).returncode != 0:
            subprocess.run(["umount", "-l", mnt])


@test
def a_read_only_or_wrongly_keyed_destination_fails_with_its_code():
    e = env()
    initialised(e, "ro")
    d = e.dest("ro")
    a = e.account()
    a.put("site/index.html", "<p>x</p>\n")
    run = {"destination": d, "user": a.name, "home": False, "paths": ["site"]}
    # The repository's file system turns read-only (a bind mount of it,
    # remounted so): restic cannot take its lock.
    subprocess.run(["mount", "--bind", d["location"], d["location"]], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", d["location"]], check=True)
        job = finished(e, expect_ok(e.call("backup.run", run))["job_id"], WAIT_S)
    finally:
        subprocess.run(["umount", d["location"]])
    assert job["state"] == "failed" and job["error"]["code"] == "DEST_READ_ONLY", job
    assert "snapshot_id" not in job["stages"][0], job
    # A password that opens no key of the repository.
    job = finished(e, expect_ok(e.call("backup.run", dict(run, destination=e.dest("ro", ref="other-pw"))))["job_id"],
                   WAIT_S)
    assert job["state"] == "failed" and job["error"]["code"] == "REPO_WRONG_PASSWORD", job
    assert json.loads(e.restic(d["location"], "snapshots", "--json").stdout) == []
    # Writable again, the right password: the same job succeeds.
    job = finished(e, expect_ok(e.call("backup.run", run))["job_id"], WAIT_S)
    assert job["state"] == "succeeded", job


def main():
    agenttest.suite("backup faults", "root, restic, FUSE and python3-fusepy (tools/deps test)",
                    executable(RESTIC) and have_fuse(), lambda: ENV)


if __name__ == "__main__":
    main()
