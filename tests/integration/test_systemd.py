"""The systemd units, checked with systemd's own tools, and the agent's side
of the service manager protocol: READY=1, STATUS=, RELOADING=1, STOPPING=1
and the watchdog, seen on a notify socket of ours exactly as PID 1 would see
them. Socket activation and the drain on SIGTERM are covered in
test_modules.py and test_protocol.py.

None of this needs systemd as PID 1: `systemd-analyze verify` and
`systemd-analyze security --offline` read unit files, and the agent only
needs NOTIFY_SOCKET and WATCHDOG_USEC in its environment.
"""

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import agenttest
from agenttest import AGENT, SRCDIR, Agent, expect_ok, render_config, run, test

UNITDIR = os.path.join(SRCDIR, "systemd")
SOCKET_UNIT = os.path.join(UNITDIR, "jabali-agent.socket")
SERVICE_IN = os.path.join(UNITDIR, "jabali-agent.service.in")
DEFAULT_CONF = os.path.join(SRCDIR, "conf", "jabali-agent.conf")
PLACEHOLDERS = {"sbindir", "sysconfdir"}

# The exposure score of `systemd-analyze security` (0-100 here, 72 = 7.2)
# that the service must not exceed. It pins the hardening: removing a line
# raises the score and fails the test. Lower it when the unit gets
# stricter; raise it only with a reason written in the unit.
EXPOSURE_THRESHOLD = 72

# Assessments of `systemd-analyze security` that the service must pass:
# one per hardening line of the unit (the score alone moves in steps of 0.1
# and misses the lighter ones).
HARDENING = (
    "NotifyAccess=", "RestrictRealtime=", "LockPersonality=", "SystemCallArchitectures=",
    "RestrictAddressFamilies=~AF_PACKET",
) + tuple("SystemCallFilter=~@" + g for g in (
    "module", "reboot", "clock", "raw-io", "debug", "cpu-emulation", "obsolete",
)) + tuple("CapabilityBoundingSet=~CAP_" + c for c in (
    "SYS_MODULE", "SYS_RAWIO", "SYS_BOOT", "SYS_TIME", "WAKE_ALARM", "SYSLOG", "MAC_*", "BPF", "BLOCK_SUSPEND",
    "SYS_PACCT", "SYS_TTY_CONFIG", "LEASE",
))

# Options that give the service a private mount namespace (or run it as
# another user): the unit keeps all of them off, see its header.
NAMESPACE_OPTIONS = ("PrivateTmp", "PrivateDevices", "PrivateMounts", "ProtectSystem", "ProtectHome",
                     "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
                     "ProtectProc", "ProcSubset", "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths",
                     "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "RootDirectory", "RootImage",
                     "DynamicUser", "User", "PrivateUsers")
# Capabilities the agent's work needs: running programs as users, killing
# workers and user processes, owning files under /home, quota and mounts.
NEEDED_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SYS_ADMIN")


def need(tool):
    path = shutil.which(tool)
    assert path, "%s is missing (tools/deps test installs systemd)" % tool
    return path


def render_units(dest, sbindir=None, sysconfdir=None):
    """The units as the build installs them, into dest: the socket as it
    is, the service with its placeholders replaced by existing paths."""
    sbindir = sbindir or os.path.dirname(os.path.abspath(AGENT))
    sysconfdir = sysconfdir or os.path.join(dest, "etc")
    with open(SERVICE_IN) as f:
        text = f.read()
    found = set(re.findall(r"@([A-Za-z_]+)@", text))
    assert found == PLACEHOLDERS, "the service template uses %s, the build substitutes %s" % (
        sorted(found), sorted(PLACEHOLDERS))
    text = text.replace("@sbindir@", sbindir).replace("@sysconfdir@", sysconfdir)
    with open(os.path.join(dest, "jabali-agent.service"), "w") as f:
        f.write(text)
    shutil.copy(SOCKET_UNIT, os.path.join(dest, "jabali-agent.socket"))
    return [os.path.join(dest, "jabali-agent.socket"), os.path.join(dest, "jabali-agent.service")]


def man_tree(dest):
    """A MANPATH holding the project's own pages, so that verify checks the
    Documentation= lines against them; None when man(1) is not installed."""
    if not shutil.which("man"):
        return None
    root = os.path.join(dest, "man")
    for page in os.listdir(os.path.join(SRCDIR, "man")):
        m = re.match(r".+\.([1-8])$", page)
        if m:
            os.makedirs(os.path.join(root, "man" + m.group(1)), exist_ok=True)
            shutil.copy(os.path.join(SRCDIR, "man", page), os.path.join(root, "man" + m.group(1), page))
    return root


def verify(dest, units):
    args = [need("systemd-analyze"), "verify", "--recursive-errors=yes"]
    env = dict(os.environ)
    man = man_tree(dest)
    if man:
        env["MANPATH"] = man
    else:
        args.append("--man=no")
    return subprocess.run(args + units, env=env, capture_output=True, text=True, timeout=120)


def timespan_usec(span):
    """A unit file time span in microseconds, as systemd itself reads it."""
    r = subprocess.run([need("systemd-analyze"), "timespan", span], capture_output=True, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "systemd does not read %r as a time span: %r" % (span, r.stderr)
    # "      μs: 660000000" ("us:" outside UTF-8 locales)
    m = re.search(r"^\s*(?:\u03bcs|us):\s*(\d+)\s*$", out, re.M)
    assert m, "unexpected systemd-analyze timespan output: %r" % out
    return int(m.group(1))


def parse_unit(path):
    """{section: {key: [values...]}}; enough for the files checked here."""
    sections, cur = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = sections.setdefault(line[1:-1], {})
                continue
            assert cur is not None and "=" in line, "%s: cannot read %r" % (path, line)
            k, _, v = line.partition("=")
            cur.setdefault(k.strip(), []).append(v.strip())
    return sections


def one(section, key):
    vals = section.get(key)
    assert vals and len(vals) == 1, "%s= must be set once, is %r" % (key, vals)
    return vals[0]


def conf_default(group, key):
    """A default from the shipped conf/jabali-agent.conf (its group block)."""
    with open(DEFAULT_CONF) as f:
        text = f.read()
    block = re.search(r"^%s:\s*\{(.*?)^\};" % re.escape(group), text, re.S | re.M)
    assert block, "no %s group in %s" % (group, DEFAULT_CONF)
    m = re.search(r"^\s*%s\s*=\s*(\"[^\"]*\"|\d+)L?\s*;" % re.escape(key), block.group(1), re.M)
    assert m, "no %s.%s in %s" % (group, key, DEFAULT_CONF)
    return m.group(1).strip('"')


# ---- the agent on a notify socket ----

def wait_line(agent, pred, what, timeout=30):
    """Notification lines up to and including the first one for which
    pred holds."""
    seen = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            agent.notify.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = agent.notify.recv(4096).decode()
            except socket.timeout:
                break
            for line in msg.split("\n"):
                if line:
                    seen.append((time.monotonic(), line))
                    if pred(line):
                        return seen
    finally:
        agent.notify.settimeout(30)
    raise AssertionError("no %s from the agent (got %r); stderr: %s" % (what, [l for _, l in seen], agent.log()))


def collect(agent, seconds):
    """Every notification line that arrives within `seconds`, timed."""
    seen = []
    deadline = time.monotonic() + seconds
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            agent.notify.settimeout(left)
            try:
                msg = agent.notify.recv(4096).decode()
            except socket.timeout:
                break
            seen.extend((time.monotonic(), line) for line in msg.split("\n") if line)
    finally:
        agent.notify.settimeout(30)
    return seen


@contextlib.contextmanager
def agent_via(shell_lines, **kw):
    """An Agent started through `sh`, which runs shell_lines and then execs
    the agent: the pid stays the same, so $$ is the agent's own pid (what
    systemd puts into WATCHDOG_PID before it execs a service)."""
    d = tempfile.mkdtemp(prefix="jabali-it-wrap-")
    path = os.path.join(d, "jabali-agent")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n%s\nexec %s \"$@\"\n" % ("\n".join(shell_lines), shlex.quote(AGENT)))
    os.chmod(path, 0o755)
    saved = agenttest.AGENT
    agenttest.AGENT = path
    try:
        with Agent(**kw) as a:
            yield a
    finally:
        agenttest.AGENT = saved
        shutil.rmtree(d, ignore_errors=True)


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # The comm field may hold spaces and parentheses: parse after the last ')'.
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(entry))
    return out


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(e.split("=", 1) for e in f.read().decode(errors="replace").split("\0") if "=" in e)


def assert_pings(agent, usec):
    """WATCHDOG=1 keeps coming, never further apart than the period.
    sd-event pings every half period, so a 1 s period leaves half a second
    for scheduling jitter on a loaded machine (sanitizer builds, parallel
    tests) before a gap would make systemd kill the agent."""
    lines = collect(agent, 4 * usec / 1e6)
    pings = [t for t, l in lines if l == "WATCHDOG=1"]
    assert len(pings) >= 4, "%d WATCHDOG=1 in %.1f s (period %d us): %r" % (len(pings), 4 * usec / 1e6, usec, lines)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < usec / 1e6, "a watchdog gap of %.3f s exceeds the period %d us: %r" % (max(gaps), usec, gaps)


# ---- the unit files ----

@test
def units_verify_clean():
    d = tempfile.mkdtemp(prefix="jabali-it-units-")
    try:
        r = verify(d, render_units(d))
        assert r.returncode == 0 and r.stderr == "" and r.stdout == "", \
            "systemd-analyze verify: rc %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout, r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def verify_catches_a_misspelt_key():
    """The check above is not vacuous: verify reads these files and speaks up."""
    d = tempfile.mkdtemp(prefix="jabali-it-units-")
    try:
        units = render_units(d)
        with open(units[1]) as f:
            text = f.read()
        with open(units[1], "w") as f:
            f.write(text.replace("[Service]\n", "[Service]\nWatchdogSce=30s\n", 1))
        r = verify(d, units)
        assert r.returncode != 0, "verify accepted WatchdogSce=: %s" % r.stderr
        assert "Unknown key 'WatchdogSce'" in r.stderr and "jabali-agent.service" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def verify_catches_a_missing_binary():
    d = tempfile.mkdtemp(prefix="jabali-it-units-")
    try:
        r = verify(d, render_units(d, sbindir=os.path.join(d, "nonexistent")))
        assert r.returncode != 0 and "is not executable" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def service_hardening_holds():
    """systemd's own reading of the hardening: each setting the unit means
    to apply passes, and the overall exposure does not grow."""
    d = tempfile.mkdtemp(prefix="jabali-it-units-")
    try:
        units = render_units(d)
        env = dict(os.environ, LC_ALL="C")      # "+"/"-" instead of check marks
        r = subprocess.run([need("systemd-analyze"), "security", "--offline=yes",
                            "--threshold=%d" % EXPOSURE_THRESHOLD, units[1]],
                           capture_output=True, text=True, env=env, timeout=120)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert r.returncode == 0, "exposure above %d:\n%s%s" % (EXPOSURE_THRESHOLD, r.stdout, r.stderr)
    passed = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("+ ")}
    missing = [a for a in HARDENING if a not in passed]
    assert not missing, "no longer in effect: %s\n%s" % (missing, r.stdout)


@test
def units_fit_the_agent():
    """What the agent relies on, and what must agree with its config."""
    d = tempfile.mkdtemp(prefix="jabali-it-units-")
    try:
        sock_path, svc_path = render_units(d, sbindir="/SBIN", sysconfdir="/ETC")
        svc, sock = parse_unit(svc_path), parse_unit(sock_path)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    unit, s = svc["Unit"], svc["Service"]
    assert "jabali-agent.socket" in " ".join(unit.get("Requires", [])), unit
    assert "jabali-agent.socket" in " ".join(unit.get("After", [])), unit
    # main.c's default is SYSCONFDIR "/jabali/jabali-agent.conf".
    assert one(s, "ExecStart") == "/SBIN/jabali-agent -c /ETC/jabali/jabali-agent.conf", s["ExecStart"]
    assert s["ExecReload"][-1] == "/bin/kill -HUP $MAINPID", s["ExecReload"]
    assert one(s, "Type") == "notify" and one(s, "NotifyAccess") == "main", s
    assert one(s, "KillMode") == "mixed", "workers must not get SIGTERM next to the master: %r" % s["KillMode"]
    assert one(s, "Restart") == "on-failure" and one(s, "OOMPolicy") == "continue", s
    # Hats must be entered before no_new_privs: systemd must not set it.
    assert s.get("NoNewPrivileges", ["no"])[-1] in ("no", "false", "0", "off"), s["NoNewPrivileges"]
    for key in NAMESPACE_OPTIONS:
        assert s.get(key, ["no"])[-1] in ("no", "false", "0", "off", ""), "%s=%s" % (key, s[key])
    dropped = " ".join(v[1:] for v in s.get("CapabilityBoundingSet", []) if v.startswith("~")).split()
    assert not any(not v.startswith("~") for v in s.get("CapabilityBoundingSet", [])), "use ~ (drop) lists only"
    for cap in NEEDED_CAPS:
        assert cap not in dropped, "%s is dropped" % cap
    for cap in ("CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_CHECKPOINT_RESTORE"):
        assert cap in dropped, "%s is no longer dropped" % cap
    denied = " ".join(v[1:] for v in s.get("SystemCallFilter", []) if v.startswith("~")).split()
    for call in ("syslog", "bpf", "io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert call in denied, "%s is no longer denied" % call
    assert one(s, "SystemCallErrorNumber") == "EPERM", "a filtered call must fail, not kill dpkg half-way"
    families = " ".join(s.get("RestrictAddressFamilies", [])).split()
    for fam in ("AF_UNIX", "AF_NETLINK"):
        assert not families or fam in families, families
    # The drain waits max_timeout_ms + 5 s; systemd must wait longer.
    max_timeout_usec = int(conf_default("limits", "max_timeout_ms")) * 1000
    stop_usec = timespan_usec(one(s, "TimeoutStopSec"))
    assert stop_usec > max_timeout_usec + 5000000, "TimeoutStopSec=%s cuts the drain short" % s["TimeoutStopSec"]
    abort_usec = timespan_usec(one(s, "TimeoutAbortSec"))
    watchdog_usec = timespan_usec(one(s, "WatchdogSec"))
    assert 0 < watchdog_usec and abort_usec < stop_usec, (watchdog_usec, abort_usec, stop_usec)
    # The socket unit and the shipped config describe the same socket.
    k = sock["Socket"]
    assert one(k, "ListenStream") == conf_default("socket", "path"), k
    assert one(k, "SocketGroup") == conf_default("socket", "group"), k
    assert one(k, "SocketMode") == conf_default("socket", "mode"), k
    assert one(k, "Accept") in ("no", "false"), k


# ---- the notify protocol ----

@test
def ready_then_status():
    with Agent() as a:
        # Agent() returned on READY=1; STATUS= follows it.
        lines = wait_line(a, lambda l: l.startswith("STATUS="), "STATUS=")
        status = lines[-1][1]
        assert re.match(r"STATUS=serving: 1 of 1 modules ready, \d+ actions$", status), status
        expect_ok(a.call("agent.ping"))


@test
def watchdog_pings_for_its_own_pid():
    usec = 1000000
    with agent_via(["WATCHDOG_PID=$$", "export WATCHDOG_PID"], env={"WATCHDOG_USEC": str(usec)}) as a:
        assert_pings(a, usec)
        expect_ok(a.call("agent.ping"))
        assert_pings(a, usec)


@test
def watchdog_pings_without_pid():
    usec = 1000000
    with agent_via(["unset WATCHDOG_PID"], env={"WATCHDOG_USEC": str(usec)}) as a:
        assert_pings(a, usec)


@test
def watchdog_ignores_another_pid():
    """A WATCHDOG_USEC meant for another process (say, inherited from a
    parent under a watchdog) must not make the agent ping."""
    with agent_via(["WATCHDOG_PID=1", "export WATCHDOG_PID"], env={"WATCHDOG_USEC": "100000"}) as a:
        lines = collect(a, 0.6)
        assert not [l for _, l in lines if l == "WATCHDOG=1"], lines


@test
def workers_get_no_notify_socket():
    """NotifyAccess=main: only the master speaks to systemd, and the
    workers do not even learn where the socket is."""
    with agent_via(["WATCHDOG_PID=$$", "export WATCHDOG_PID"], env={"WATCHDOG_USEC": "5000000"}) as a:
        expect_ok(a.call("test.echo", {}))
        kids = children(a.proc.pid)
        assert kids, "no worker processes under %d" % a.proc.pid
        assert "NOTIFY_SOCKET" in environ_of(a.proc.pid)
        for pid in kids:
            env = environ_of(pid)
            leaked = [k for k in env if k.startswith(("NOTIFY_", "WATCHDOG_", "LISTEN_"))]
            assert not leaked, "worker %d has %r" % (pid, leaked)


@test
def sighup_reloading_then_ready():
    with Agent() as a:
        for broken in (False, True):
            if broken:
                with open(a.conf_path, "w") as f:
                    f.write(render_config(a.cfg) + "bogus = 1;\n")
            a.signal(signal.SIGHUP)
            lines = [l for _, l in wait_line(a, lambda l: l == "READY=1", "READY=1 after SIGHUP")]
            # systemd 252 enters "reloading" on RELOADING=1 and leaves it on
            # READY=1: a failed reload must answer READY=1 too, or the unit
            # would stay in "reloading" until TimeoutStartSec.
            assert "RELOADING=1" in lines and lines.index("RELOADING=1") < lines.index("READY=1"), lines
            status = wait_line(a, lambda l: l.startswith("STATUS="), "STATUS= after reload")[-1][1]
            assert status.startswith("STATUS=serving"), status
            expect_ok(a.call("test.echo", {}))
        assert "reload failed" in a.log(), a.log()


@test
def sigterm_stopping_then_exit():
    with Agent() as a:
        a.signal(signal.SIGTERM)
        wait_line(a, lambda l: l == "STOPPING=1", "STOPPING=1")
        assert a.wait(30) == 0, a.log()


if __name__ == "__main__":
    run()
