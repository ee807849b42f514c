#!/usr/bin/env python3
"""backup.forget and backup.check against Debian's restic.

Snapshots are made with restic itself (its own password file), tagged the
way the module tags them; every outcome is read back from restic (which
snapshots remain, how many blobs the repository holds), not taken from the
module's answer alone. A damaged repository is made by overwriting bytes
in the middle of its pack files.

Needs root and restic (tools/deps test); without them the test reports a
single skipped case (TAP SKIP), never a failure.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
import test_backup  # noqa: E402
from agenttest import executable, expect_error, expect_ok, test  # noqa: E402
from test_backup import RESTIC, finished, initialised, wait_for  # noqa: E402

# Importing test_backup registered its cases with the shared runner: this
# program runs only its own.
del agenttest._tests[:]

ENV = None


def env():
    global ENV
    if ENV is None:
        ENV = test_backup.Env()
    return ENV


def snapshot(e, repo, data, *tags):
    """One snapshot of `data` (its content changed first, so every snapshot
    has data of its own for prune to drop); returns its full id."""
    with open(os.path.join(data, "f"), "a") as f:
        f.write(os.urandom(4000).hex())
    args = ["backup", "--json", "--host", "h"]
    for t in tags:
        args += ["--tag", t]
    b = e.restic(repo, *(args + [data]))
    assert b.returncode == 0, b.stderr
    short = json.loads(b.stdout.strip().splitlines()[-1])["snapshot_id"]
    return next(s["id"] for s in snapshots(e, repo) if s["short_id"] == short)


def snapshots(e, repo):
    r = e.restic(repo, "snapshots", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def blob_count(e, repo):
    r = e.restic(repo, "list", "blobs")
    assert r.returncode == 0, r.stderr
    return len(r.stdout.splitlines())


def data_dir(e, name):
    d = os.path.join(e.t, "data-" + name)
    os.makedirs(d, exist_ok=True)
    return d


def repository(e, name):
    """A new repository: its path and its destination."""
    initialised(e, name)
    return os.path.join(e.local_root, name), e.dest(name)


def one_snapshot(e, name, user):
    """A new repository holding one snapshot of `user`'s."""
    repo, d = repository(e, name)
    snapshot(e, repo, data_dir(e, name), "user=" + user)
    return repo, d


@test
def forget_needs_a_policy_within_bounds():
    e = env()
    d = e.dest("m0")
    for bad in ({}, {"keep_last": 0}, {"keep_daily": 10001}, {"keep_last": -1}, {"keep_weekly": "2"},
                {"keep_last": 1, "tags": {"a,b": "c"}}, {"keep_last": 1, "tags": {"k": "x=y"}},
                {"keep_last": 1, "tags": {"k": ""}}, {"keep_last": 1, "user": "Bad,User"},
                {"keep_last": 1, "prune": "yes"}, {"keep_yearly": 1}):
        params = dict(bad, destination=d)
        expect_error(e.call("backup.forget", params), "INVALID_PARAMS")
    # The refusals came before restic: no repository was touched or made.
    assert not os.path.exists(d["location"])
    expect_error(e.call("backup.forget", {"destination": d, "keep_last": 1}), "NOT_FOUND")


@test
def forget_keeps_what_the_policy_says_per_account():
    e = env()
    repo, d = repository(e, "m1")
    alice = [snapshot(e, repo, data_dir(e, "a"), "user=alice") for _ in range(3)]
    bob = [snapshot(e, repo, data_dir(e, "b"), "user=bob") for _ in range(2)]
    blobs = blob_count(e, repo)

    dry = expect_ok(e.call("backup.forget", {"destination": d, "user": "alice", "keep_last": 1}, dry_run=True))
    assert dry["changed"] is True and dry["pruned"] is False, dry
    assert sorted(s["id"] for s in dry["removed"]) == sorted(alice[:2]), dry
    assert [s["id"] for s in dry["kept"]] == [alice[2]], dry
    assert len(snapshots(e, repo)) == 5, "a dry run removed snapshots"

    r = expect_ok(e.call("backup.forget", {"destination": d, "user": "alice", "keep_last": 1}))
    assert r["changed"] is True and r["pruned"] is True, r
    assert sorted(s["id"] for s in r["removed"]) == sorted(alice[:2]), r
    assert all(s["tags"] == ["user=alice"] for s in r["removed"] + r["kept"]), r
    left = snapshots(e, repo)
    assert sorted(s["id"] for s in left) == sorted([alice[2]] + bob), left
    # Prune ran: the data only the forgotten snapshots used is gone.
    assert blob_count(e, repo) < blobs
    assert e.restic(repo, "check").returncode == 0

    again = expect_ok(e.call("backup.forget", {"destination": d, "user": "alice", "keep_last": 1}))
    assert again["changed"] is False and again["removed"] == [] and again["pruned"] is False, again
    assert len(snapshots(e, repo)) == 3


@test
def forget_narrows_by_tags_and_can_skip_prune():
    e = env()
    initialised(e, "m2")
    repo = os.path.join(e.local_root, "m2")
    data = data_dir(e, "c")
    db = [snapshot(e, repo, data, "user=carol", "kind=db") for _ in range(3)]
    files = [snapshot(e, repo, data, "user=carol", "kind=files") for _ in range(2)]
    other = snapshot(e, repo, data, "user=dave", "kind=db")
    blobs = blob_count(e, repo)
    r = expect_ok(e.call("backup.forget", {"destination": e.dest("m2"), "user": "carol", "tags": {"kind": "db"},
                                           "keep_last": 2, "prune": False}))
    assert [s["id"] for s in r["removed"]] == [db[0]] and r["pruned"] is False, r
    assert sorted(s["id"] for s in snapshots(e, repo)) == sorted(db[1:] + files + [other])
    assert blob_count(e, repo) == blobs, "prune ran although prune was false"
    # Tags alone, across accounts: every snapshot tagged kind=db (policy per
    # host and paths, restic's grouping).
    r = expect_ok(e.call("backup.forget", {"destination": e.dest("m2"), "tags": {"kind": "db"}, "keep_last": 1}))
    assert sorted(s["id"] for s in r["removed"]) == sorted(db[1:]), r
    assert sorted(s["id"] for s in snapshots(e, repo)) == sorted(files + [other])


@test
def forget_in_the_background_is_a_job():
    e = env()
    repo, d = repository(e, "m5")
    alice = [snapshot(e, repo, data_dir(e, "ga"), "user=gina") for _ in range(3)]
    blobs = blob_count(e, repo)
    params = {"destination": d, "user": "gina", "keep_last": 1, "background": True}
    expect_error(e.call("backup.forget", params, dry_run=True), "INVALID_PARAMS")
    r = expect_ok(e.call("backup.forget", params))
    assert r["state"] == "queued" and r["changed"] is True and len(r["job_id"]) == 32, r
    job = finished(e, r["job_id"])
    assert job["kind"] == "forget" and job["state"] == "succeeded" and "error" not in job, job
    assert job["user"] == "gina" and job["keep_last"] == 1 and job["destination"] == d, job
    assert [(s["name"], s["state"]) for s in job["stages"]] == [("forget", "succeeded"), ("prune", "succeeded")], job
    assert sorted(s["id"] for s in job["stages"][0]["removed"]) == sorted(alice[:2]), job
    assert [s["id"] for s in job["stages"][0]["kept"]] == [alice[2]], job
    assert [s["id"] for s in snapshots(e, repo)] == [alice[2]]
    assert blob_count(e, repo) < blobs, "the prune stage succeeded without pruning"
    assert e.restic(repo, "check").returncode == 0
    # Nothing left to forget: no prune stage.
    again = finished(e, expect_ok(e.call("backup.forget", params))["job_id"])
    assert [(s["name"], s["state"]) for s in again["stages"]] == [("forget", "succeeded")], again
    assert again["stages"][0]["removed"] == [] and again["state"] == "succeeded", again
    # A failure is the job's, with restic's code; never succeeded.
    bad = finished(e, expect_ok(e.call("backup.forget", dict(params, destination=e.dest("m5", ref="other-pw"))))
                   ["job_id"])
    assert bad["state"] == "failed" and bad["error"]["code"] == "REPO_WRONG_PASSWORD", bad
    assert [(s["name"], s["state"]) for s in bad["stages"]] == [("forget", "failed")], bad


def corrupt_packs(repo):
    """Overwrites bytes in the middle of every pack file."""
    n = 0
    for top, _, names in os.walk(os.path.join(repo, "data")):
        for name in names:
            p = os.path.join(top, name)
            size = os.path.getsize(p)
            with open(p, "r+b") as f:
                f.seek(size // 2)
                f.write(b"\xde\xad\xbe\xef" * 4)
            n += 1
    assert n > 0, "no pack file to corrupt"


@test
def check_passes_a_sound_repository_and_refuses_bad_subsets():
    e = env()
    _, d = one_snapshot(e, "m3", "erin")
    r = expect_ok(e.call("backup.check", {"destination": d}))
    assert r["ok"] is True and r["findings"] == [] and r["changed"] is False, r
    for subset in ("1/2", "2/2", "100%", "1%"):
        r = expect_ok(e.call("backup.check", {"destination": d, "read_data_subset": subset}))
        assert r["ok"] is True and r["read_data_subset"] == subset, r
    for bad in ("0/2", "3/2", "1/0", "2", "50", "0%", "101%", "-1%", "1/2/3", "01/2", "1.5%", "a/b", "1 /2",
                "1/100001"):
        expect_error(e.call("backup.check", {"destination": d, "read_data_subset": bad}), "INVALID_PARAMS")
    expect_error(e.call("backup.check", {"destination": e.dest("m3", ref="other-pw")}), "REPO_WRONG_PASSWORD")
    expect_error(e.call("backup.check", {"destination": e.dest("nothing-here")}), "NOT_FOUND")


@test
def check_finds_a_damaged_repository():
    e = env()
    repo, d = one_snapshot(e, "m4", "finn")
    corrupt_packs(repo)
    # restic itself agrees that the repository is damaged.
    assert e.restic(repo, "check", "--read-data").returncode == 1
    for params in ({"destination": d}, {"destination": d, "read_data_subset": "100%"}):
        resp = expect_error(e.call("backup.check", params), "REPO_DAMAGED")
        assert "restic check found errors" in resp["error"], resp
    # No stale lock left behind: restic still opens the repository.
    assert os.listdir(os.path.join(repo, "locks")) == []
    # In the background: a failed job with the code and the findings.
    r = expect_ok(e.call("backup.check", {"destination": d, "read_data_subset": "100%", "background": True}))
    job = finished(e, r["job_id"])
    assert job["state"] == "failed" and job["error"]["code"] == "REPO_DAMAGED", job
    assert job["stages"][0]["state"] == "failed" and job["stages"][0]["findings"], job


@test
def a_background_check_is_a_job_cancel_stops():
    e = env()
    repo, d = one_snapshot(e, "m6", "hana")
    r = expect_ok(e.call("backup.check", {"destination": d, "read_data_subset": "100%", "background": True}))
    assert r["state"] == "queued" and r["changed"] is False, r
    job = finished(e, r["job_id"])
    assert job["kind"] == "check" and job["state"] == "succeeded" and job["read_data_subset"] == "100%", job
    assert [(s["name"], s["state"], s["findings"]) for s in job["stages"]] == [("check", "succeeded", [])], job
    # An index file that is a FIFO holds restic once it has locked the
    # repository (check reads no cache around it): opening the FIFO for
    # writing succeeds only once restic opened it to read, and restic then
    # waits for data that never comes. The job is running until cancelled.
    locks = os.path.join(repo, "locks")
    index = os.path.join(repo, "index", sorted(os.listdir(os.path.join(repo, "index")))[0])
    writer = None

    def restic_reading_the_index():
        try:
            return os.open(index, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.01)
            return None
    os.rename(index, index + ".saved")
    try:
        os.mkfifo(index)
        r = expect_ok(e.call("backup.check", {"destination": d, "background": True}))
        writer = wait_for("restic reading the index", restic_reading_the_index)
        assert os.listdir(locks), "restic read the index without a lock"
        assert expect_ok(e.call("backup.job.get", {"job_id": r["job_id"]}))["job"]["state"] == "running"
        # A running job's record never expires, however old: another job
        # starting (and failing at once) leaves it.
        old = time.time() - 400 * 86400
        os.utime(os.path.join(e.settings["jobs_dir"], r["job_id"] + ".json"), (old, old))
        other = expect_ok(e.call("backup.check", {"destination": e.dest("nothing-here"), "background": True}))
        assert finished(e, other["job_id"])["error"]["code"] == "NOT_FOUND"
        assert expect_ok(e.call("backup.job.get", {"job_id": r["job_id"]}))["job"]["state"] == "running"
        c = expect_ok(e.call("backup.job.cancel", {"job_id": r["job_id"]}))
        assert c["changed"] is True and c["state"] == "cancelled", c
        job = finished(e, r["job_id"])
        assert job["state"] == "cancelled" and job["error"]["code"] == "JOB_CANCELLED", job
        assert [(s["name"], s["state"]) for s in job["stages"]] == [("check", "cancelled")], job
        assert os.listdir(locks) == [], "restic's lock was left: %r" % job
    finally:
        if writer is not None:
            os.close(writer)
        if os.path.exists(index):
            os.unlink(index)
        os.rename(index + ".saved", index)
    expect_ok(e.call("backup.check", {"destination": d}))


@test
def job_records_are_listed_by_filter_and_expire():
    e = env()
    _, d = one_snapshot(e, "m7", "ivy")
    expect_error(e.call("backup.check", {"destination": d, "background": True}, dry_run=True), "INVALID_PARAMS")
    chk = finished(e, expect_ok(e.call("backup.check", {"destination": d, "background": True}))["job_id"])
    fgt = finished(e, expect_ok(e.call("backup.forget", {"destination": d, "user": "ivy", "keep_last": 5,
                                                          "background": True}))["job_id"])

    def ids(**filters):
        return [j["job_id"] for j in expect_ok(e.call("backup.job.list", filters))["jobs"]]
    assert chk["job_id"] in ids(kind="check") and fgt["job_id"] not in ids(kind="check")
    assert ids(user="ivy") == [fgt["job_id"]]
    assert fgt["job_id"] in ids(user="ivy", kind="forget", state="succeeded")
    assert ids(user="ivy", state="failed") == []
    every = expect_ok(e.call("backup.job.list"))
    assert every["truncated"] is False and every["total"] == len(every["jobs"]) >= 2, every
    newest = expect_ok(e.call("backup.job.list", {"limit": 1}))
    assert newest["jobs"] == every["jobs"][-1:] and newest["truncated"] is True, newest
    assert newest["total"] == every["total"], newest
    for bad in ({"limit": 0}, {"limit": 10001}, {"kind": "other"}, {"state": "done"}, {"user": "Bad User"},
                {"job_id": chk["job_id"]}):
        expect_error(e.call("backup.job.list", bad), "INVALID_PARAMS")
    # The check's record last written 31 days ago (job_retention_days: 30):
    # the next job to start removes it, and only it.
    old = time.time() - 31 * 86400
    os.utime(os.path.join(e.settings["jobs_dir"], chk["job_id"] + ".json"), (old, old))
    assert chk["job_id"] in ids(), "listing expires nothing"
    finished(e, expect_ok(e.call("backup.check", {"destination": d, "background": True}))["job_id"])
    expect_error(e.call("backup.job.get", {"job_id": chk["job_id"]}), "NOT_FOUND")
    assert chk["job_id"] not in ids() and fgt["job_id"] in ids()


def main():
    agenttest.suite("backup forget and check", "root and restic (tools/deps test)", executable(RESTIC), lambda: ENV)


if __name__ == "__main__":
    main()
