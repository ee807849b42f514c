#!/usr/bin/env python3
"""Backup schedules: systemd timer and service units, the stored job, and
backup.schedule.run against Debian's restic.

systemd is not PID 1 here, so the module's `systemctl` setting points at a
recorder script: it appends its arguments to a log and exits 0, or 1 for a
verb the test names (a file of that name in its fail directory), which is
how a stopped or disabled timer is shown to the module. The units are
checked with `systemd-analyze verify`, which needs no running systemd; the
service's ExecStart= names the built jabali-agentctl, so verify finds it,
and the test runs that very command line to start a scheduled backup.

Needs root, restic and systemd-analyze (tools/deps test); without them the
test reports a single skipped case (TAP SKIP), never a failure.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
import test_backup  # noqa: E402
from agenttest import CTL, Agent, executable, expect_error, expect_ok, test  # noqa: E402
from test_backup import PASSWORD, RESTIC, initialised  # noqa: E402
from webstack import module_dir  # noqa: E402

# Importing test_backup registered its cases with the shared runner: this
# program runs only its own.
del agenttest._tests[:]

ANALYZE = "/usr/bin/systemd-analyze"
ENV = None

RECORDER = """#!/bin/sh
printf '%%s\\n' "$*" >>'%(log)s'
[ -e '%(fail)s/'"$1" ] && exit 1
exit 0
"""


class Env(test_backup.Env):
    """test_backup's environment plus the schedule settings."""

    def setup(self):
        t = self.t
        self.units = os.path.join(t, "units")
        os.makedirs(self.units)
        self.ctl_log = os.path.join(t, "systemctl.log")
        self.ctl_fail = os.path.join(t, "systemctl-fail")
        os.makedirs(self.ctl_fail)
        recorder = os.path.join(t, "systemctl")
        with open(recorder, "w") as f:
            f.write(RECORDER % {"log": self.ctl_log, "fail": self.ctl_fail})
        os.chmod(recorder, 0o755)
        super().setup()
        # The same agent as test_backup's, with the schedule settings.
        self.settings.update({"units_dir": self.units, "schedules_dir": os.path.join(t, "schedules"),
                              "systemctl": recorder, "agentctl": CTL, "randomized_delay_sec": 30})
        self.agent.close()
        self.agent = Agent(modules={"dir": module_dir(t, ["backup"]), "test": None,
                                    "backup": {"enabled": True, "settings": self.settings}})

    def calls(self):
        """What systemctl was asked since the last look."""
        if not os.path.exists(self.ctl_log):
            return []
        with open(self.ctl_log) as f:
            lines = f.read().splitlines()
        os.unlink(self.ctl_log)
        return lines

    def unit(self, sid, kind):
        return os.path.join(self.units, "jabali-backup-%s.%s" % (sid, kind))

    def state(self, sid):
        return os.path.join(self.settings["schedules_dir"], sid + ".json")


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


def job(e, repo="s-repo", user="nobody"):
    return {"destination": e.dest(repo), "user": user}


def files_of(e, sid):
    """(inode, mtime, content) of the units and the state file."""
    out = {}
    for p in (e.unit(sid, "timer"), e.unit(sid, "service"), e.state(sid)):
        st = os.stat(p)
        with open(p) as f:
            out[p] = (st.st_ino, st.st_mtime_ns, f.read())
    return out


def verify(e, sid):
    # --man=no: Documentation= names jabali-agentctl(1), which the
    # jabali-agent package installs and a build tree does not.
    r = subprocess.run([ANALYZE, "verify", "--man=no", e.unit(sid, "timer"), e.unit(sid, "service")],
                       env={"PATH": "/usr/bin:/bin", "SYSTEMD_UNIT_PATH": e.units + ":", "SYSTEMD_LOG_COLOR": "0"},
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


@test
def write_makes_units_systemd_accepts():
    e = env()
    e.calls()
    r = expect_ok(e.call("backup.schedule.write", {"schedule_id": "nightly", "on_calendar": "*-*-* 03:00:00",
                                                   "job": job(e)}))
    assert r["changed"] is True and r["timer"] == "jabali-backup-nightly.timer", r
    assert r["service"] == "jabali-backup-nightly.service", r
    rc, out = verify(e, "nightly")
    assert rc == 0 and "jabali-backup" not in out, out
    with open(e.unit("nightly", "timer")) as f:
        timer = f.read()
    assert timer.startswith("# jabali-backup: {") and "\nOnCalendar=*-*-* 03:00:00\n" in timer, timer
    assert "\nPersistent=true\nRandomizedDelaySec=30\n" in timer, timer
    with open(e.unit("nightly", "service")) as f:
        service = f.read()
    assert "\nExecStart=%s --json call backup.schedule.run schedule_id==nightly\n" % CTL in service, service
    st = os.stat(e.state("nightly"))
    assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o600, oct(st.st_mode)
    assert (os.stat(e.settings["schedules_dir"]).st_mode & 0o777) == 0o700
    with open(e.state("nightly")) as f:
        stored = json.load(f)
    assert stored == {"schedule_id": "nightly", "on_calendar": "*-*-* 03:00:00", "job": job(e)}, stored
    assert PASSWORD not in json.dumps(stored)
    assert e.calls() == ["daemon-reload", "enable jabali-backup-nightly.timer",
                         "restart jabali-backup-nightly.timer"]
    listed = expect_ok(e.call("backup.schedule.list"))["schedules"]
    assert [s["schedule_id"] for s in listed] == ["nightly"] and listed[0]["job"] == job(e), listed


@test
def a_repeat_changes_nothing_and_a_change_only_what_changed():
    e = env()
    params = {"schedule_id": "conv", "on_calendar": "daily", "job": job(e)}
    expect_ok(e.call("backup.schedule.write", params))
    e.calls()
    before = files_of(e, "conv")
    # The same schedule, its job's members in another order.
    again = dict(params, job={"user": "nobody", "destination": dict(reversed(list(e.dest("s-repo").items())))})
    r = expect_ok(e.call("backup.schedule.write", again))
    assert r["changed"] is False, r
    assert files_of(e, "conv") == before, "a repeat rewrote a file"
    assert e.calls() == ["is-enabled --quiet jabali-backup-conv.timer", "is-active --quiet jabali-backup-conv.timer"]
    # A dry run of a change reports it and writes nothing.
    r = expect_ok(e.call("backup.schedule.write", dict(params, on_calendar="hourly"), dry_run=True))
    assert r["changed"] is True and files_of(e, "conv") == before, r
    assert not any(c.split()[0] in ("daemon-reload", "enable", "restart") for c in e.calls())
    # Only the job changed: the state file, no unit, no reload.
    r = expect_ok(e.call("backup.schedule.write", dict(params, job=job(e, user="root"))))
    after = files_of(e, "conv")
    assert r["changed"] is True and after[e.state("conv")] != before[e.state("conv")], r
    assert after[e.unit("conv", "timer")] == before[e.unit("conv", "timer")]
    assert not any(c.split()[0] in ("daemon-reload", "enable", "restart") for c in e.calls())
    # The calendar changed: the timer, reloaded and restarted.
    r = expect_ok(e.call("backup.schedule.write", dict(params, on_calendar="Mon..Fri 02:30")))
    assert r["changed"] is True
    with open(e.unit("conv", "timer")) as f:
        assert "\nOnCalendar=Mon..Fri 02:30\n" in f.read()
    assert e.calls() == ["daemon-reload", "enable jabali-backup-conv.timer", "restart jabali-backup-conv.timer"]
    # A timer found stopped is started again, without a reload.
    open(os.path.join(e.ctl_fail, "is-active"), "w").close()
    try:
        r = expect_ok(e.call("backup.schedule.write", dict(params, on_calendar="Mon..Fri 02:30")))
    finally:
        os.unlink(os.path.join(e.ctl_fail, "is-active"))
    assert r["changed"] is True
    assert e.calls()[-2:] == ["enable jabali-backup-conv.timer", "restart jabali-backup-conv.timer"]
    # systemctl failing is the answer's failure.
    open(os.path.join(e.ctl_fail, "daemon-reload"), "w").close()
    try:
        expect_error(e.call("backup.schedule.write", dict(params, on_calendar="weekly")), "SERVICE_FAILED")
    finally:
        os.unlink(os.path.join(e.ctl_fail, "daemon-reload"))


@test
def calendars_systemd_refuses_are_refused():
    e = env()
    for cal in ("bogus", "-1", "25:00", "daily\nOnCalendar=hourly", "%H:00", "daily\\", " daily", "hourly; id",
                "", "x" * 257, "Mon..Fri 02:30 Nowhere/Atlantis"):
        resp = e.call("backup.schedule.write", {"schedule_id": "badcal", "on_calendar": cal, "job": job(e)})
        expect_error(resp, "INVALID_PARAMS")
        assert "on_calendar" in resp["error"], resp
    assert not os.path.exists(e.unit("badcal", "timer")) and not os.path.exists(e.state("badcal"))


@test
def jobs_and_ids_backup_run_would_refuse_are_refused():
    e = env()
    base = {"schedule_id": "badjob", "on_calendar": "daily", "job": job(e)}
    for bad in ({"job": {"destination": e.dest("r")}}, {"job": dict(job(e), extra=1)},
                {"job": dict(job(e), user="Bad,user")},
                {"job": {"destination": e.dest("r", location="/etc/x"), "user": "nobody"}},
                {"job": {"destination": e.dest("r", ref="nosuch"), "user": "nobody"}},
                {"schedule_id": "../x"}, {"schedule_id": "a/b"}, {"schedule_id": ".hidden"},
                {"schedule_id": "x" * 65}, {"schedule_id": "a%n"}):
        resp = e.call("backup.schedule.write", dict(base, **bad))
        assert resp["ok"] is False and resp["code"] in ("INVALID_PARAMS", "NOT_FOUND"), (bad, resp)
    assert not [f for f in os.listdir(e.units) if "badjob" in f], "a refused schedule wrote a unit"
    assert not os.path.exists(e.state("badjob"))


@test
def units_not_ours_or_edited_are_conflicts():
    e = env()
    hand = e.unit("hand", "timer")
    with open(hand, "w") as f:
        f.write("[Timer]\nOnCalendar=daily\n")
    params = {"schedule_id": "hand", "on_calendar": "daily", "job": job(e)}
    expect_error(e.call("backup.schedule.write", params), "CONFLICT")
    expect_error(e.call("backup.schedule.delete", {"schedule_id": "hand"}), "CONFLICT")
    with open(hand) as f:
        assert f.read() == "[Timer]\nOnCalendar=daily\n"
    assert not os.path.exists(e.unit("hand", "service")) and not os.path.exists(e.state("hand"))
    # One of ours, edited by hand below its first line.
    params["schedule_id"] = "edited"
    expect_ok(e.call("backup.schedule.write", params))
    svc = e.unit("edited", "service")
    with open(svc, "a") as f:
        f.write("Nice=19\n")
    with open(svc) as f:
        edited = f.read()
    for action, p in (("backup.schedule.write", params), ("backup.schedule.write", dict(params, on_calendar="hourly")),
                      ("backup.schedule.delete", {"schedule_id": "edited"})):
        resp = expect_error(e.call(action, p), "CONFLICT")
        assert "by hand" in resp["error"], resp
    with open(svc) as f:
        assert f.read() == edited
    # A symbolic link where a unit goes is not followed.
    os.symlink(hand, e.unit("linked", "service"))
    expect_error(e.call("backup.schedule.write", dict(params, schedule_id="linked")), "CONFLICT")
    assert os.path.islink(e.unit("linked", "service"))


@test
def delete_removes_both_units_and_the_job():
    e = env()
    expect_ok(e.call("backup.schedule.write", {"schedule_id": "gone", "on_calendar": "weekly", "job": job(e)}))
    e.calls()
    dry = expect_ok(e.call("backup.schedule.delete", {"schedule_id": "gone"}, dry_run=True))
    assert dry["changed"] is True and os.path.exists(e.unit("gone", "timer")), dry
    assert e.calls() == []
    r = expect_ok(e.call("backup.schedule.delete", {"schedule_id": "gone"}))
    assert r["changed"] is True, r
    for p in (e.unit("gone", "timer"), e.unit("gone", "service"), e.state("gone")):
        assert not os.path.exists(p), p
    assert e.calls() == ["disable --now jabali-backup-gone.timer", "daemon-reload"]
    again = expect_ok(e.call("backup.schedule.delete", {"schedule_id": "gone"}))
    assert again["changed"] is False and e.calls() == [], again
    assert "gone" not in [s["schedule_id"] for s in expect_ok(e.call("backup.schedule.list"))["schedules"]]
    expect_error(e.call("backup.schedule.run", {"schedule_id": "gone"}), "NOT_FOUND")


@test
def the_service_starts_a_backup_that_succeeds():
    e = env()
    initialised(e, "s-run")
    a = e.account()
    a.put("site/index.html", "<p>scheduled</p>\n")
    d = e.dest("s-run")
    expect_ok(e.call("backup.schedule.write", {"schedule_id": "acct", "on_calendar": "*-*-* 04:00:00",
                                               "job": {"destination": d, "user": a.name}}))
    # What systemd would run: the service's ExecStart=, word by word (the
    # module writes no quotes), against the test's agent.
    with open(e.unit("acct", "service")) as f:
        line = next(x for x in f.read().splitlines() if x.startswith("ExecStart="))
    argv = line[len("ExecStart="):].split(" ")
    cli = subprocess.run(argv, env={"PATH": "/usr/bin:/bin", "JABALI_AGENT_SOCKET": e.agent.sock_path},
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, (cli.stdout, cli.stderr)
    answer = json.loads(cli.stdout)
    res = answer["result"]
    assert res["schedule_id"] == "acct" and res["state"] == "queued" and res["changed"] is True, answer
    job_rec = test_backup.finished(e, res["job_id"])
    assert job_rec["state"] == "succeeded" and job_rec["user"] == a.name, job_rec
    assert job_rec["schedule_id"] == "acct", "the record does not name its schedule: %r" % job_rec
    snaps = json.loads(e.restic(d["location"], "snapshots", "--json", "--tag", "user=" + a.name).stdout)
    assert [s["short_id"] for s in snaps] == [job_rec["stages"][0]["snapshot_id"]] and snaps[0]["paths"] == [a.home], snaps
    assert "jabali-schedule=acct" in snaps[0]["tags"], snaps
    # A job started by hand names no schedule.
    by_hand = test_backup.finished(e, expect_ok(e.call("backup.run", {"destination": d, "user": a.name}))["job_id"])
    assert by_hand["state"] == "succeeded" and "schedule_id" not in by_hand, by_hand
    # A dry run starts nothing.
    jobs = sorted(os.listdir(e.settings["jobs_dir"]))
    dry = expect_ok(e.call("backup.schedule.run", {"schedule_id": "acct"}, dry_run=True))
    assert dry["changed"] is True and "job_id" not in dry, dry
    assert sorted(os.listdir(e.settings["jobs_dir"])) == jobs
    # A stored job that backup.run no longer takes is refused when run.
    with open(e.state("acct")) as f:
        stored = json.load(f)
    stored["job"]["unknown"] = 1
    with open(e.state("acct"), "w") as f:
        json.dump(stored, f)
    expect_error(e.call("backup.schedule.run", {"schedule_id": "acct"}), "CONFLICT")
    assert sorted(os.listdir(e.settings["jobs_dir"])) == jobs


def main():
    agenttest.suite("backup schedules", "root, restic and systemd-analyze (tools/deps test)",
                    executable(RESTIC, ANALYZE), lambda: ENV)


if __name__ == "__main__":
    main()
