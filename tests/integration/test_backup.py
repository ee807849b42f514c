#!/usr/bin/env python3
"""The backup module against Debian's restic.

Repositories are local directories beneath a temporary local_root; the
secrets directory is a temporary root-only directory. Every check looks at
what restic left on disk or asks restic itself (with its own password
file), not at the module's word alone.

A locked repository is made the way an administrator's restic would hold
it: `restic key passwd` takes the exclusive lock and then waits for the new
password on its stdin, a pipe this test keeps open until it is done (the
lock file appearing in locks/ is the condition waited for).

Needs root and restic (tools/deps test); without them the test reports a
single skipped case (TAP SKIP), never a failure.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import Agent, executable, expect_error, expect_golden, expect_ok, test  # noqa: E402
from webstack import Account, module_dir  # noqa: E402

RESTIC = "/usr/bin/restic"
PASSWORD = "correct horse battery staple 7f3c"
WAIT_S = 30
ENV = None


def wait_for(what, fn, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what


class Env:
    def __init__(self, **settings):
        self.extra_settings = settings      # the module's settings that differ for one suite
        self.agent = None
        self.acct = None
        self.t = tempfile.mkdtemp(prefix="jabali-backup-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def setup(self):
        t = self.t
        os.chmod(t, 0o711)
        self.secrets = os.path.join(t, "secrets")
        os.makedirs(self.secrets, mode=0o700)
        self.write_secret("repo-pw", PASSWORD)
        self.write_secret("other-pw", "not the password")
        self.local_root = os.path.join(t, "repos")
        os.makedirs(self.local_root, mode=0o700)
        self.cache = os.path.join(t, "cache")
        self.settings = {"restic": RESTIC, "secrets_dir": self.secrets, "jobs_dir": os.path.join(t, "jobs"),
                         "lock_dir": os.path.join(t, "locks"), "cache_dir": self.cache,
                         "local_root": self.local_root}
        self.settings.update(self.extra_settings)
        mods = module_dir(t, ["backup"])
        self.agent = Agent(modules={"dir": mods, "test": None,
                                    "backup": {"enabled": True, "settings": self.settings}})

    def write_secret(self, name, value, mode=0o600):
        p = os.path.join(self.secrets, name)
        with open(p, "w") as f:
            f.write(value + "\n")
        os.chmod(p, mode)
        return p

    def dest(self, name, ref="repo-pw", **over):
        d = {"kind": "local", "location": os.path.join(self.local_root, name), "password_ref": ref}
        d.update(over)
        return d

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def restic(self, repo, *args, **kw):
        """restic itself, with the test's own copy of the password."""
        env = {"PATH": "/usr/bin:/bin", "RESTIC_REPOSITORY": repo, "RESTIC_CACHE_DIR": self.cache,
               "RESTIC_PASSWORD_FILE": os.path.join(self.secrets, "repo-pw")}
        return subprocess.run([RESTIC] + list(args), env=env, capture_output=True, text=True, **kw)

    def account(self):
        if self.acct is None:
            homes = os.path.join(self.t, "home")
            os.makedirs(homes, exist_ok=True)
            self.acct = Account("jbk", homes)
        return self.acct

    def close(self):
        # Whatever the agent's stop reports (valgrind's findings raise),
        # the runners, the account and the tree go too.
        try:
            if self.agent is not None:
                self.agent.close()
        finally:
            if getattr(self, "settings", None):
                kill_job_sessions(self.settings["jobs_dir"])
            if self.acct is not None:
                self.acct.remove()
            shutil.rmtree(self.t, ignore_errors=True)


def kill_job_sessions(jobs_dir):
    """Runners outlive the agent by design; a test that failed may leave
    one (and its restic) running: every session a record names that still
    runs is killed."""
    try:
        names = os.listdir(jobs_dir)
    except OSError:
        return
    for name in names:
        try:
            with open(os.path.join(jobs_dir, name)) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue
        if rec.get("state") in ("queued", "running") and isinstance(rec.get("sid"), int) and rec["sid"] > 1:
            subprocess.run(["pkill", "-KILL", "-s", str(rec["sid"])])


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


def initialised(e, name):
    """A repository made through the module; returns its id."""
    r = expect_ok(e.call("backup.destination.test", {"destination": e.dest(name), "init": True}))
    return r["repository_id"]


@test
def golden_contract():
    actions = expect_golden(env().agent, "backup")
    names = {a["name"] for a in actions}
    assert names >= {"backup.destination.test", "backup.job.get", "backup.job.list", "backup.job.cancel",
                     "backup.run", "backup.snapshots.list"}, names


@test
def missing_repository_is_not_found():
    e = env()
    d = e.dest("absent")
    expect_error(e.call("backup.destination.test", {"destination": d}), "NOT_FOUND")
    r = expect_ok(e.call("backup.destination.test", {"destination": d, "init": True}, dry_run=True))
    assert r["changed"] is True and r["created"] is True, r
    assert not os.path.exists(d["location"]), "a dry run created the repository"


@test
def init_creates_a_repository_restic_opens():
    e = env()
    d = e.dest("r1")
    r = expect_ok(e.call("backup.destination.test", {"destination": d, "init": True}))
    assert r["changed"] is True and r["created"] is True, r
    assert len(r["repository_id"]) == 64 and r["repository_version"] >= 1, r
    mode = os.stat(os.path.join(d["location"], "config")).st_mode
    assert stat.S_ISREG(mode)
    # restic, with the password of the secret file, sees the same repository.
    cat = e.restic(d["location"], "cat", "config")
    assert cat.returncode == 0, cat.stderr
    assert json.loads(cat.stdout)["id"] == r["repository_id"]
    # Testing (or init-testing) it again changes nothing.
    for params in ({"destination": d}, {"destination": d, "init": True}):
        again = expect_ok(e.call("backup.destination.test", params))
        assert again["changed"] is False and again["created"] is False, again
        assert again["repository_id"] == r["repository_id"]


@test
def wrong_password_has_its_code():
    e = env()
    initialised(e, "r2")
    resp = e.call("backup.destination.test", {"destination": e.dest("r2", ref="other-pw"), "init": True})
    expect_error(resp, "REPO_WRONG_PASSWORD")
    # init did not turn a wrong password into a second repository.
    assert len(os.listdir(os.path.join(e.local_root, "r2", "keys"))) == 1


@test
def locked_repository_has_its_code():
    e = env()
    initialised(e, "r3")
    repo = os.path.join(e.local_root, "r3")
    locks = os.path.join(repo, "locks")
    holder = subprocess.Popen([RESTIC, "key", "passwd"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              env={"PATH": "/usr/bin:/bin", "RESTIC_REPOSITORY": repo, "RESTIC_CACHE_DIR": e.cache,
                                   "RESTIC_PASSWORD_FILE": os.path.join(e.secrets, "repo-pw")})
    try:
        wait_for("restic's exclusive lock", lambda: os.listdir(locks))
        expect_error(e.call("backup.destination.test", {"destination": e.dest("r3")}), "REPO_LOCKED")
    finally:
        holder.stdin.close()
        holder.wait(WAIT_S)
    assert not os.listdir(locks)
    assert expect_ok(e.call("backup.destination.test", {"destination": e.dest("r3")}))["changed"] is False


@test
def secrets_must_be_root_only():
    e = env()
    d = {"destination": None, "init": True}
    d["destination"] = e.dest("r4", ref="nosuch")
    expect_error(e.call("backup.destination.test", d), "NOT_FOUND")
    e.write_secret("group-readable", PASSWORD, mode=0o640)
    d["destination"] = e.dest("r4", ref="group-readable")
    expect_error(e.call("backup.destination.test", d), "CONFLICT")
    p = e.write_secret("not-roots", PASSWORD)
    os.chown(p, 65534, 65534)
    d["destination"] = e.dest("r4", ref="not-roots")
    expect_error(e.call("backup.destination.test", d), "CONFLICT")
    os.symlink(os.path.join(e.secrets, "repo-pw"), os.path.join(e.secrets, "link"))
    d["destination"] = e.dest("r4", ref="link")
    expect_error(e.call("backup.destination.test", d), "CONFLICT")
    d["destination"] = e.dest("r4", ref="../secrets/repo-pw")
    expect_error(e.call("backup.destination.test", d), "INVALID_PARAMS")
    # A secrets directory others may write to is refused as a whole.
    os.chmod(e.secrets, 0o733)
    try:
        d["destination"] = e.dest("r4")
        expect_error(e.call("backup.destination.test", d), "CONFLICT")
    finally:
        os.chmod(e.secrets, 0o700)
    assert not os.path.exists(os.path.join(e.local_root, "r4")), "a refused request created a repository"


@test
def locations_stay_beneath_local_root():
    e = env()
    for loc in ("/etc/jabali-backup-test", e.local_root, e.local_root + "x/r", e.local_root + "/../r",
                e.local_root + "/./r", e.local_root + "//r", "relative/r"):
        resp = e.call("backup.destination.test", {"destination": e.dest("x", location=loc), "init": True})
        expect_error(resp, "INVALID_PARAMS")
    for bad in ({"kind": "sftp"}, {"password_ref": ""}, {"location": ""}, {"extra": 1}):
        expect_error(e.call("backup.destination.test", {"destination": e.dest("x", **bad)}), "INVALID_PARAMS")
    assert os.listdir(e.local_root) == [] or "x" not in os.listdir(e.local_root)
    assert not os.path.exists("/etc/jabali-backup-test")


@test
def the_password_is_nowhere_in_audit_or_log():
    e = env()
    initialised(e, "r5")
    audit = e.agent.audit()
    assert any(r.get("action") == "backup.destination.test" for r in audit), "nothing audited"
    text = json.dumps(audit) + e.agent.log()
    assert PASSWORD not in text


@test
def snapshots_are_listed_per_user():
    e = env()
    initialised(e, "r6")
    repo = os.path.join(e.local_root, "r6")
    data = os.path.join(e.t, "data")
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "f"), "w") as f:
        f.write("x" * 1000)
    made = {}
    for user in ("alice", "alice", "bob"):
        b = e.restic(repo, "backup", "--json", "--tag", "user=" + user, "--host", "h", data)
        assert b.returncode == 0, b.stderr
        made.setdefault(user, []).append(json.loads(b.stdout.strip().splitlines()[-1])["snapshot_id"])
    d = e.dest("r6")
    for user in ("alice", "bob"):
        r = expect_ok(e.call("backup.snapshots.list", {"destination": d, "user": user}))
        assert r["changed"] is False
        assert sorted(s["short_id"] for s in r["snapshots"]) == sorted(made[user]), (user, r)
        for s in r["snapshots"]:
            assert s["tags"] == ["user=" + user] and s["paths"] == [data] and len(s["id"]) == 64, s
    assert expect_ok(e.call("backup.snapshots.list", {"destination": d, "user": "carol"}))["snapshots"] == []
    expect_error(e.call("backup.snapshots.list", {"destination": d, "user": "Bad,user"}), "INVALID_PARAMS")
    expect_error(e.call("backup.snapshots.list", {"destination": e.dest("r6", ref="other-pw"), "user": "bob"}),
                 "REPO_WRONG_PASSWORD")
    expect_error(e.call("backup.snapshots.list", {"destination": e.dest("none"), "user": "bob"}), "NOT_FOUND")


TERMINAL = ("succeeded", "partial", "failed", "cancelled", "interrupted")


def finished(e, job_id, timeout=WAIT_S):
    def done():
        job = expect_ok(e.call("backup.job.get", {"job_id": job_id}))["job"]
        return job if job["state"] in TERMINAL else None
    return wait_for("job " + job_id, done, timeout)


@test
def run_backs_up_a_home_as_a_job():
    e = env()
    initialised(e, "r7")
    a = e.account()
    a.put("public_html/index.html", "<h1>hi</h1>\n")
    a.put("notes.txt", "y" * 5000, mode=0o600)
    d = e.dest("r7")
    r = expect_ok(e.call("backup.run", {"destination": d, "user": a.name}))
    assert r["changed"] is True and r["state"] == "queued" and len(r["job_id"]) == 32, r
    rec = os.path.join(e.settings["jobs_dir"], r["job_id"] + ".json")
    assert os.path.exists(rec), "the answer names no record"
    job = finished(e, r["job_id"])
    assert job["state"] == "succeeded", job
    assert job["stages"][0]["name"] == "home" and job["stages"][0]["state"] == "succeeded", job
    files = sum(len(fs) for _, _, fs in os.walk(a.home))     # with useradd's skeleton
    assert job["stages"][0]["summary"]["total_files_processed"] == files, job
    assert job["progress"]["percent_done"] == 1 and job["progress"]["files_done"] == files, job
    assert job["user"] == a.name and "error" not in job, job
    st = os.stat(rec)
    assert st.st_uid == 0 and (st.st_mode & 0o077) == 0
    # restic agrees: the snapshot is there, tagged for the account, with the home.
    snaps = json.loads(e.restic(d["location"], "snapshots", "--json", "--tag", "user=" + a.name).stdout)
    assert [s["short_id"] for s in snaps] == [job["stages"][0]["snapshot_id"]] and snaps[0]["paths"] == [a.home], snaps
    listed = expect_ok(e.call("backup.snapshots.list", {"destination": d, "user": a.name}))["snapshots"]
    assert [s["short_id"] for s in listed] == [job["stages"][0]["snapshot_id"]]
    assert sorted(snaps[0]["tags"]) == sorted(["user=" + a.name, "jabali-job=" + r["job_id"], "jabali-stage=home"])
    # A dry run starts nothing.
    before = sorted(os.listdir(e.settings["jobs_dir"]))
    dry = expect_ok(e.call("backup.run", {"destination": d, "user": a.name}, dry_run=True))
    assert dry["changed"] is True and "job_id" not in dry
    assert sorted(os.listdir(e.settings["jobs_dir"])) == before
    expect_error(e.call("backup.run", {"destination": d, "user": "jbknosuchuser"}), "NOT_FOUND")


@test
def a_failed_backup_is_failed_with_its_code():
    e = env()
    initialised(e, "r8")
    a = e.account()
    a.put("f", "z")
    repo = os.path.join(e.local_root, "r8")
    holder = subprocess.Popen([RESTIC, "key", "passwd"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              env={"PATH": "/usr/bin:/bin", "RESTIC_REPOSITORY": repo, "RESTIC_CACHE_DIR": e.cache,
                                   "RESTIC_PASSWORD_FILE": os.path.join(e.secrets, "repo-pw")})
    try:
        wait_for("restic's exclusive lock", lambda: os.listdir(os.path.join(repo, "locks")))
        r = expect_ok(e.call("backup.run", {"destination": e.dest("r8"), "user": a.name}))
        job = finished(e, r["job_id"])
    finally:
        holder.stdin.close()
        holder.wait(WAIT_S)
    assert job["state"] == "failed" and job["error"]["code"] == "REPO_LOCKED", job
    assert job["stages"][0]["state"] == "failed" and "snapshot_id" not in job["stages"][0], job
    assert json.loads(e.restic(repo, "snapshots", "--json").stdout) == []


@test
def a_job_whose_process_died_is_interrupted():
    e = env()
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()
    job_id = "0123456789abcdef0123456789abcdef"
    rec = {"job_id": job_id, "kind": "backup", "state": "running", "user": "x", "created_at": 1,
           "pid": gone.pid, "pid_start": 1}
    os.makedirs(e.settings["jobs_dir"], mode=0o700, exist_ok=True)
    path = os.path.join(e.settings["jobs_dir"], job_id + ".json")
    with open(path, "w") as f:
        json.dump(rec, f)
    job = expect_ok(e.call("backup.job.get", {"job_id": job_id}))["job"]
    assert job["state"] == "interrupted" and job["error"]["code"] == "JOB_INTERRUPTED", job
    with open(path) as f:
        assert json.load(f)["state"] == "interrupted", "the record was not rewritten"
    jobs = expect_ok(e.call("backup.job.list"))["jobs"]
    assert jobs[0]["job_id"] == job_id, "oldest first"
    assert all(j["state"] in TERMINAL for j in jobs), jobs
    expect_error(e.call("backup.job.get", {"job_id": "f" * 32}), "NOT_FOUND")
    for bad in ("F" * 32, "../" + "a" * 29, "g" * 32):
        expect_error(e.call("backup.job.get", {"job_id": bad}), "INVALID_PARAMS")


def main():
    agenttest.suite("backup module", "root and restic (tools/deps test)", executable(RESTIC), lambda: ENV)


if __name__ == "__main__":
    main()
