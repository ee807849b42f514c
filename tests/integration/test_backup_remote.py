#!/usr/bin/env python3
"""Remote destinations of the backup module (sftp, rest) and the write
probe of backup.destination.test, against real servers on loopback.

sftp: a foreground sshd on 127.0.0.1 and a free port, serving only
internal-sftp to a temporary account (deleted at the end) whose key the
module gets by reference; the server's host key is pinned in the
secrets directory. rest: `rclone serve restic` with a user and a
password (with characters that must be escaped in a URL). Each check
looks at what the servers hold on disk, at sshd's own log, or asks
restic itself with the test's own copy of the secrets.

A read-only destination is a local repository whose data directories are
immutable (chattr +i; root ignores mode bits): opening it works, the
probe's write does not. restic retries a refused write for about 45 s
before it gives up, which this test waits out once.

Needs root, restic, sshd and rclone (tools/deps test); without them a
single skipped case (TAP SKIP) is reported, never a failure.
"""

import glob
import json
import os
import pwd
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import executable, expect_error, expect_golden, expect_ok, free_port, test  # noqa: E402
from test_backup import PASSWORD, RESTIC, Env, finished, wait_for  # noqa: E402

# test_backup's own cases registered themselves on import; this file runs its own only.
agenttest._tests[:] = [f for f in agenttest._tests if f.__module__ != "test_backup"]

SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
RCLONE = "/usr/bin/rclone"
REST_USER = "jbrestuser"
# Escaped in the URL (':', ' ', '@', '/', '%'); never to appear in any output.
REST_PASS = "Pw:7 q@z/x%41-unique-9b1e"
ENV = None


def wait_port(port, proc):
    def up():
        assert proc.poll() is None, "the server exited (status %s)" % proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False
    wait_for("port %d" % port, up)


def keygen(path):
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path], check=True)
    with open(path + ".pub") as f:
        return " ".join(f.read().split()[:2])


class RemoteEnv(Env):
    def setup(self):
        self.sshd = self.rclone = None
        self.sftp_user = None
        self.answers = []
        super().setup()
        self.setup_sftp()
        self.setup_rest()

    # ---- sftp ----

    def setup_sftp(self):
        t = self.t
        d = os.path.join(t, "sftp")
        os.makedirs(d, mode=0o700)
        host_pub = keygen(os.path.join(d, "hostkey"))
        other_pub = keygen(os.path.join(d, "otherhostkey"))
        client_pub = keygen(os.path.join(d, "clientkey"))
        self.sftp_port = free_port()
        pin = "[127.0.0.1]:%d %s\n" % (self.sftp_port, host_pub)
        wrong_pin = "[127.0.0.1]:%d %s\n" % (self.sftp_port, other_pub)
        with open(os.path.join(d, "clientkey")) as f:
            key = f.read()
        for name, kh in (("sftp-key", pin), ("wrong-pin", wrong_pin), ("open-pin", pin), ("no-pin", None)):
            self.write_secret(name, key.rstrip("\n"))
            if kh is not None:
                self.write_secret(name + ".known_hosts", kh.rstrip("\n"),
                                  mode=0o644 if name == "open-pin" else 0o600)
        self.kh = os.path.join(d, "known_hosts")
        with open(self.kh, "w") as f:
            f.write(pin)
        self.clientkey = os.path.join(d, "clientkey")

        self.sftp_user = "jbsftp%d" % (os.getpid() % 100000)
        self.sftp_home = os.path.join(t, "sftphome")
        subprocess.run(["useradd", "-M", "-d", self.sftp_home, "-s", "/usr/sbin/nologin", self.sftp_user],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # useradd's '!' reads as a locked account once PAM is off.
        subprocess.run(["usermod", "-p", "*", self.sftp_user], check=True)
        pw = pwd.getpwnam(self.sftp_user)
        os.makedirs(os.path.join(self.sftp_home, ".ssh"))
        os.makedirs(os.path.join(self.sftp_home, "data"))
        ak = os.path.join(self.sftp_home, ".ssh", "authorized_keys")
        with open(ak, "w") as f:
            f.write(client_pub + "\n")
        os.chmod(ak, 0o600)
        for p in (self.sftp_home, os.path.join(self.sftp_home, ".ssh"), ak, os.path.join(self.sftp_home, "data")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.makedirs("/run/sshd", exist_ok=True)
        cfg = os.path.join(d, "sshd_config")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "Port %d" % self.sftp_port, "ListenAddress 127.0.0.1", "HostKey " + os.path.join(d, "hostkey"),
                "PidFile " + os.path.join(d, "sshd.pid"), "AuthorizedKeysFile " + ak,
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                "PermitRootLogin no", "AllowUsers " + self.sftp_user, "Subsystem sftp internal-sftp",
                "ForceCommand internal-sftp", "AllowTcpForwarding no",
                # VERBOSE logs each connection as sshd's child accepts it,
                # before it sends its banner: counting those lines is
                # exact, while the [preauth] line of a client that gave up
                # may come in whenever sshd notices.
                "LogLevel VERBOSE", ""]))
        subprocess.run([SSHD, "-t", "-f", cfg], check=True)
        self.sshd_log = os.path.join(d, "sshd.log")
        with open(self.sshd_log, "w") as log:
            self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", cfg], stdout=log, stderr=log)
        wait_port(self.sftp_port, self.sshd)

    def sftp_location(self, name, port=None):
        return "sftp://%s@127.0.0.1:%d%s" % (self.sftp_user, port or self.sftp_port,
                                            os.path.join(self.sftp_home, "data", name))

    def sftp_dest(self, name, ref="repo-pw", cred="sftp-key", **over):
        d = {"kind": "sftp", "location": self.sftp_location(name), "password_ref": ref, "credentials_ref": cred}
        d.update(over)
        return d

    def sshd_text(self):
        with open(self.sshd_log) as f:
            return f.read()

    def restic_sftp(self, name, *args):
        cmd = ("sftp.command=%s -F /dev/null -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s "
               "-o StrictHostKeyChecking=yes -o BatchMode=yes -p %d -l %s 127.0.0.1 -s sftp"
               % (SSH, self.clientkey, self.kh, self.sftp_port, self.sftp_user))
        # restic's URL form: the path after "//" is absolute.
        loc = "sftp://%s@127.0.0.1:%d/%s" % (self.sftp_user, self.sftp_port, os.path.join(self.sftp_home, "data", name))
        return self.restic(loc, "-o", cmd, *args)

    # ---- rest ----

    def setup_rest(self):
        self.rest_data = os.path.join(self.t, "restdata")
        os.makedirs(self.rest_data, mode=0o700)
        self.rest_port = free_port()
        self.write_secret("rest-cred", REST_USER + ":" + REST_PASS)
        self.write_secret("rest-bad-cred", REST_USER + ":not-the-password")
        self.rclone_log = os.path.join(self.t, "rclone.log")
        with open(self.rclone_log, "w") as log:
            self.rclone = subprocess.Popen(
                [RCLONE, "serve", "restic", "--addr", "127.0.0.1:%d" % self.rest_port, "--user", REST_USER,
                 "--pass", REST_PASS, "--config", "/dev/null", self.rest_data],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        wait_port(self.rest_port, self.rclone)

    def rest_location(self, name, port=None):
        return "rest:http://127.0.0.1:%d/%s" % (port or self.rest_port, name)

    def rest_dest(self, name, ref="repo-pw", cred="rest-cred", **over):
        d = {"kind": "rest", "location": self.rest_location(name), "password_ref": ref, "credentials_ref": cred}
        d.update(over)
        return d

    def restic_rest(self, name, *args):
        from urllib.parse import quote
        url = "rest:http://%s:%s@127.0.0.1:%d/%s" % (REST_USER, quote(REST_PASS, safe=""), self.rest_port, name)
        return self.restic(url, *args)

    # ---- both ----

    def call(self, action, params=None, **extra):
        resp = super().call(action, params, **extra)
        self.answers.append(resp)
        return resp

    def stop_servers(self):
        for p in (self.sshd, self.rclone):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(30)

    def close(self):
        try:
            self.stop_servers()
        finally:
            if self.sftp_user:
                subprocess.run(["userdel", self.sftp_user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            super().close()


def env():
    global ENV
    if ENV is None:
        ENV = RemoteEnv()
    return ENV


def repo_files(path, sub):
    return sorted(glob.glob(os.path.join(path, sub, "**"), recursive=True))


def probe_snapshots(restic_fn, name):
    out = restic_fn(name, "snapshots", "--json", "--tag", "jabali-probe")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@test
def golden_contract_names_the_remote_codes():
    e = env()
    actions = expect_golden(e.agent, "backup")
    test_ = [a for a in actions if a["name"] == "backup.destination.test"][0]
    for code in ("DEST_UNREACHABLE", "DEST_AUTH_FAILED", "DEST_READ_ONLY", "REPO_WRONG_PASSWORD", "REPO_LOCKED"):
        assert code in test_["errors"], test_


def init_and_back_up(e, dest, on_disk, restic_fn, name):
    """destination.test creates the repository (and checks a write), a
    backup job of a real account's home succeeds, restic lists it."""
    r = expect_ok(e.call("backup.destination.test", {"destination": dest, "init": True}))
    assert r["created"] is True and r["changed"] is True and r["write_checked"] is True, r
    assert r["kind"] == dest["kind"] and r["location"] == dest["location"], r
    assert os.path.isfile(os.path.join(on_disk, "config")), "no repository on the server"
    cat = restic_fn(name, "cat", "config")
    assert cat.returncode == 0, cat.stderr
    assert json.loads(cat.stdout)["id"] == r["repository_id"]
    # The probe wrote data, read it back and left no snapshot behind.
    assert probe_snapshots(restic_fn, name) == []
    packs = repo_files(on_disk, "data")
    again = expect_ok(e.call("backup.destination.test", {"destination": dest}))
    assert again["created"] is False and again["changed"] is False and again["write_checked"] is True, again
    assert len(repo_files(on_disk, "data")) > len(packs), "the probe wrote nothing"
    assert os.listdir(os.path.join(on_disk, "snapshots")) == [], "a probe snapshot was kept"
    # A dry run writes nothing, not even the probe.
    packs = repo_files(on_disk, "data")
    dry = expect_ok(e.call("backup.destination.test", {"destination": dest}, dry_run=True))
    assert dry["write_checked"] is False and dry["created"] is False, dry
    assert repo_files(on_disk, "data") == packs

    a = e.account()
    a.put("public_html/index.html", "<h1>remote</h1>\n")
    a.put("private.txt", "p" * 3000, mode=0o600)
    job = finished(e, expect_ok(e.call("backup.run", {"destination": dest, "user": a.name}))["job_id"])
    assert job["state"] == "succeeded", job
    snaps = json.loads(restic_fn(name, "snapshots", "--json", "--tag", "user=" + a.name).stdout)
    assert [s["short_id"] for s in snaps] == [job["stages"][0]["snapshot_id"]] and snaps[0]["paths"] == [a.home], snaps
    ls = restic_fn(name, "ls", "--json", job["stages"][0]["snapshot_id"])
    assert ls.returncode == 0 and os.path.join(a.home, "private.txt") in ls.stdout, ls.stderr
    listed = expect_ok(e.call("backup.snapshots.list", {"destination": dest, "user": a.name}))["snapshots"]
    assert [s["short_id"] for s in listed] == [job["stages"][0]["snapshot_id"]]


@test
def sftp_destination_round_trip():
    e = env()
    on_disk = os.path.join(e.sftp_home, "data", "s1")
    init_and_back_up(e, e.sftp_dest("s1"), on_disk, e.restic_sftp, "s1")
    # Written through sftp as the server's account, not by root locally.
    assert os.stat(os.path.join(on_disk, "config")).st_uid == pwd.getpwnam(e.sftp_user).pw_uid
    assert "Accepted publickey for %s" % e.sftp_user in e.sshd_text()


@test
def rest_destination_round_trip():
    e = env()
    init_and_back_up(e, e.rest_dest("r1"), os.path.join(e.rest_data, "r1"), e.restic_rest, "r1")


@test
def wrong_password_on_remote_destinations():
    e = env()
    for dest in (e.sftp_dest("s1", ref="other-pw"), e.rest_dest("r1", ref="other-pw")):
        expect_error(e.call("backup.destination.test", {"destination": dest, "init": True}), "REPO_WRONG_PASSWORD")
    assert len(os.listdir(os.path.join(e.rest_data, "r1", "keys"))) == 1
    assert len(os.listdir(os.path.join(e.sftp_home, "data", "s1", "keys"))) == 1


@test
def missing_remote_repositories_are_not_found():
    e = env()
    for dest in (e.sftp_dest("absent"), e.rest_dest("absent")):
        expect_error(e.call("backup.destination.test", {"destination": dest}), "NOT_FOUND")
    assert not os.path.exists(os.path.join(e.sftp_home, "data", "absent"))
    assert not os.path.exists(os.path.join(e.rest_data, "absent"))


@test
def rest_credentials_refused_by_the_server():
    e = env()
    resp = expect_error(e.call("backup.destination.test", {"destination": e.rest_dest("r1", cred="rest-bad-cred")}),
                        "DEST_AUTH_FAILED")
    assert "not-the-password" not in resp["error"] and REST_USER not in resp["error"], resp
    # Without credentials the server refuses too.
    d = e.rest_dest("r1")
    del d["credentials_ref"]
    expect_error(e.call("backup.destination.test", {"destination": d}), "DEST_AUTH_FAILED")


@test
def sftp_host_key_must_be_the_pinned_one():
    e = env()
    before = e.sshd_text().count("Accepted publickey")
    conns = e.sshd_text().count("Connection from ")
    resp = e.call("backup.destination.test", {"destination": e.sftp_dest("s1", cred="wrong-pin")})
    # sshd saw the connection (the count the hostile-locations case relies on).
    assert e.sshd_text().count("Connection from ") > conns
    # ssh says why on its stderr; when restic gives up before relaying it,
    # all that is left is the session that never started.
    assert resp.get("code") in ("DEST_AUTH_FAILED", "DEST_UNREACHABLE"), resp
    expect_error(resp, resp["code"])
    assert e.sshd_text().count("Accepted publickey") == before, "a connection was accepted with a wrong host key"
    expect_error(e.call("backup.destination.test", {"destination": e.sftp_dest("s1", cred="no-pin")}), "NOT_FOUND")
    expect_error(e.call("backup.destination.test", {"destination": e.sftp_dest("s1", cred="open-pin")}), "CONFLICT")
    d = e.sftp_dest("s1")
    del d["credentials_ref"]
    expect_error(e.call("backup.destination.test", {"destination": d}), "INVALID_PARAMS")
    assert e.sshd_text().count("Accepted publickey") == before


@test
def hostile_locations_are_refused_before_restic_runs():
    e = env()
    u, p = e.sftp_user, e.sftp_port
    base = os.path.join(e.sftp_home, "data")
    sftp = [
        "sftp://%s:pw@127.0.0.1:%d%s/x" % (u, p, base),             # credentials in the URL
        "sftp://%s@127.0.0.1:%d%s/a b" % (u, p, base),              # a space (restic splits on it)
        "sftp://%s@127.0.0.1:%d%s/../x" % (u, p, base),             # ..
        "sftp://%s@127.0.0.1:%d%s/./x" % (u, p, base),
        "sftp://%s@127.0.0.1:%d%s//x" % (u, p, base),
        "sftp://%s@127.0.0.1:%d%s/x/" % (u, p, base),
        "sftp://%s@127.0.0.1%s/x" % (u, base),                      # no port
        "sftp://%s@127.0.0.1:0%s/x" % (u, base),
        "sftp://%s@127.0.0.1:65536%s/x" % (u, base),
        "sftp://%s@127.0.0.1:0%d%s/x" % (u, p, base),
        "sftp://%s@127.0.0.1:+%d%s/x" % (u, p, base),
        "sftp://Root@127.0.0.1:%d%s/x" % (p, base),                 # bad user
        "sftp://-oProxyCommand=id@127.0.0.1:%d%s/x" % (p, base),
        "sftp://%s@-oProxyCommand=id:%d%s/x" % (u, p, base),        # bad host
        "sftp://%s@127.0.0.1.:%d%s/x" % (u, p, base),
        "sftp://%s@[::1:%d%s/x" % (u, p, base),
        "sftp://%s@[fe80::1%%eth0]:%d%s/x" % (u, p, base),
        "sftp://%s@127.0.0.1:%d%s/x\n" % (u, p, base),              # newline
        "sftp://%s@127.0.0.1:%d%s/x'y" % (u, p, base),              # quote
        "sftp://%s@127.0.0.1:%d%s/%%2e%%2e/x" % (u, p, base),       # escapes
        "sftp://%s@127.0.0.1:%d~/x" % (u, p),
        "sftp://%s@127.0.0.1:%d/" % (u, p),
        "sftp:%s@127.0.0.1:%s/x" % (u, base),                       # restic's other form
        "sftp://127.0.0.1:%d%s/x" % (p, base),                      # no user
    ]
    rest = [
        "rest:http://someone:pw@127.0.0.1:%d/r" % e.rest_port,          # credentials in the URL
        "rest:http://someone@127.0.0.1:%d/r" % e.rest_port,
        "rest:http://127.0.0.1/r",
        "rest:http://127.0.0.1:%d" % e.rest_port,
        "rest:http://127.0.0.1:%d/a/../r" % e.rest_port,
        "rest:http://127.0.0.1:%d/r?x=1" % e.rest_port,
        "rest:http://127.0.0.1:%d/r#f" % e.rest_port,
        "rest:http://127.0.0.1:%d/a b" % e.rest_port,
        "rest:http://127.0.0.1:%d/r\n" % e.rest_port,
        "rest:ftp://127.0.0.1:%d/r" % e.rest_port,
        "http://127.0.0.1:%d/r" % e.rest_port,
        "rest:http://Host.example:%d/r" % e.rest_port,
    ]
    sshd_before = e.sshd_text().count("Connection from ")
    rest_before = sorted(os.listdir(e.rest_data))
    for loc in sftp:
        resp = e.call("backup.destination.test", {"destination": e.sftp_dest("x", location=loc), "init": True})
        expect_error(resp, "INVALID_PARAMS")
    for loc in rest:
        resp = e.call("backup.destination.test", {"destination": e.rest_dest("x", location=loc), "init": True})
        expect_error(resp, "INVALID_PARAMS")
    # A kind and a location of another kind, a local one with credentials.
    expect_error(e.call("backup.destination.test",
                        {"destination": e.sftp_dest("x", kind="local"), "init": True}), "INVALID_PARAMS")
    expect_error(e.call("backup.destination.test",
                        {"destination": e.dest("x", kind="sftp", credentials_ref="sftp-key"), "init": True}),
                 "INVALID_PARAMS")
    expect_error(e.call("backup.destination.test",
                        {"destination": e.dest("x", credentials_ref="sftp-key"), "init": True}), "INVALID_PARAMS")
    expect_error(e.call("backup.destination.test",
                        {"destination": e.rest_dest("x", cred="../secrets/rest-cred")}), "INVALID_PARAMS")
    # No connection reached either server, nothing was created.
    assert e.sshd_text().count("Connection from ") == sshd_before
    assert sorted(os.listdir(e.rest_data)) == rest_before
    assert not os.path.exists(os.path.join(e.sftp_home, "data", "x"))


@test
def a_read_only_destination_fails_the_write_probe():
    e = env()
    expect_ok(e.call("backup.destination.test", {"destination": e.dest("ro"), "init": True}))
    repo = os.path.join(e.local_root, "ro")
    dirs = [os.path.join(repo, "snapshots"), os.path.join(repo, "index")] + \
        sorted(glob.glob(os.path.join(repo, "data", "*")))
    if subprocess.run(["chattr", "+i", dirs[0]], capture_output=True).returncode != 0:
        print("# chattr +i not supported here: the read-only destination is not tested")
        return
    try:
        subprocess.run(["chattr", "+i"] + dirs[1:], check=True)
        packs = repo_files(repo, "data")
        # restic retries refused writes for about 45 s before it gives up.
        resp = e.agent.client(timeout=150).call("backup.destination.test", {"destination": e.dest("ro")})
        e.answers.append(resp)
        expect_error(resp, "DEST_READ_ONLY")
        assert repo_files(repo, "data") == packs
    finally:
        subprocess.run(["chattr", "-i"] + dirs, check=True)
    # Writable again, it passes: the failure was the write, not the repository.
    assert expect_ok(e.call("backup.destination.test", {"destination": e.dest("ro")}))["write_checked"] is True


@test
def unreachable_destinations_have_their_code():
    e = env()
    closed = free_port()
    for dest in (e.sftp_dest("s1", location=e.sftp_location("s1", port=closed)),
                 e.rest_dest("r1", location=e.rest_location("r1", port=closed)),
                 e.rest_dest("r1", location="rest:http://[::1]:%d/r1" % closed)):
        resp = expect_error(e.call("backup.destination.test", {"destination": dest}), "DEST_UNREACHABLE")
        assert REST_PASS not in resp["error"] and REST_USER not in resp["error"], resp


@test
def stopped_servers_are_unreachable():
    """Last: the servers go away for good."""
    e = env()
    a = e.account()
    e.stop_servers()
    for dest in (e.sftp_dest("s1"), e.rest_dest("r1")):
        resp = expect_error(e.call("backup.destination.test", {"destination": dest}), "DEST_UNREACHABLE")
        assert REST_PASS not in resp["error"], resp
        job = finished(e, expect_ok(e.call("backup.run", {"destination": dest, "user": a.name}))["job_id"])
        assert job["state"] == "failed" and job["error"]["code"] == "DEST_UNREACHABLE", job
        assert "snapshot_id" not in job, job


@test
def the_rest_password_is_nowhere():
    """Not in the audit, the agent's log, a job record or any answer (the
    password as written, URL-escaped, or as the URL's userinfo)."""
    from urllib.parse import quote
    e = env()
    audit = e.agent.audit()
    assert any(r.get("action") == "backup.run" for r in audit), "nothing audited"
    jobs = ""
    for p in glob.glob(os.path.join(e.settings["jobs_dir"], "*.json")):
        with open(p) as f:
            jobs += f.read()
    assert "rest:http" in jobs, "no rest job recorded"
    text = json.dumps(audit) + e.agent.log() + jobs + json.dumps(e.answers)
    for secret in (REST_PASS, quote(REST_PASS, safe=""), "not-the-password", PASSWORD,
                   REST_USER + ":", "%s@127.0.0.1" % REST_USER):
        i = text.find(secret)
        assert i < 0, "%r leaked: %s" % (secret, text[max(0, i - 300):i + 100])
    with open(os.path.join(e.secrets, "sftp-key")) as f:
        assert f.read().splitlines()[1] not in text


def main():
    agenttest.suite("backup remote destinations", "root, restic, sshd and rclone (tools/deps test)",
                    executable(RESTIC, SSHD, SSH, SSH_KEYGEN, RCLONE), lambda: ENV)


if __name__ == "__main__":
    main()
