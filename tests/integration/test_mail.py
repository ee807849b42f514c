#!/usr/bin/env python3
"""The mail module's dovecot backend against a real Dovecot and Postfix.

A private Dovecot (IMAP + LMTP, passwd-file, quota, Sieve) and a private
Postfix (its own config_directory and queue; smtpd on 127.0.0.1; virtual
domains, mailboxes and aliases from the module's hash: maps; virtual
transport LMTP to that Dovecot; every other domain relayed to a sink) run
in the foreground on temp dirs and free 127.0.0.1 ports. The sink is an
SMTP listener in this process: what forwards and autoresponders send off
the host lands there. Every action is checked from outside: IMAP logins
(imaplib), mail submitted over SMTP (smtplib) and found over IMAP, LMTP
answers, messages in the sink.

Nothing sleeps to synchronise: ports are polled until they connect, mail
until it shows up over IMAP or in the sink (with deadlines), and "nothing
more will come" is Postfix's queue being empty. Everything started here is
stopped (Postfix with `postfix stop`, which also ends the master that
start-fg leaves behind) and the temp tree removed, whatever happens.

Needs root, dovecot and postfix (tools/deps); without them a single
skipped case (TAP SKIP), never a failure.
"""

import imaplib
import json
import os
import shutil
import smtplib
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import BUILDDIR, Agent, executable, expect_error, expect_golden, expect_ok, free_port, test  # noqa: E402

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
POSTFIX = "/usr/sbin/postfix"
POSTMAP = "/usr/sbin/postmap"
WAIT_S = 30
DOMAIN = "example.test"
MAIL_UID = 8        # Debian's "mail"

SHA_PW1 = "$6$Fp/0oAtBfe9Z1gtD$pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0"


def module_so():
    p = os.path.join(BUILDDIR, "modules", "mail", ".libs", "mail.so")
    return p if os.path.exists(p) else os.environ.get("JABALI_MAIL_SO", p)


def hash_pw(pw, scheme="SHA512-CRYPT"):
    out = subprocess.run([DOVEADM, "pw", "-s", scheme, "-p", pw], capture_output=True, text=True, check=True)
    h = out.stdout.strip()
    return h[h.index("}") + 1:]


def wait_for(what, fn, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what


# ---- the sink: every domain but ours is relayed here ----

class Sink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.messages = []      # (mail_from, [rcpt], data)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), SinkHandler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def find(self, rcpt, needle=""):
        with self.lock:
            return [m for m in self.messages if rcpt in m[1] and needle in m[2]]


class SinkHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.reply("220 sink ESMTP")
        frm, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 sink")
            elif verb == "MAIL":
                frm, rcpts = cmd[10:].strip("<> "), []
                self.reply("250 ok")
            elif verb == "RCPT":
                rcpts.append(cmd[8:].strip().strip("<>").split(">")[0])
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go")
                data = []
                while True:
                    ln = self.rfile.readline()
                    if not ln or ln in (b".\r\n", b".\n"):
                        break
                    data.append(ln.decode(errors="replace"))
                with self.server.lock:
                    self.server.messages.append((frm, rcpts, "".join(data)))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


# ---- the environment ----

class Env:
    def __init__(self):
        self.agent = None
        self.dovecot = None
        self.postfix = None
        self.postfix_started = False
        self.sink = None
        self.t = tempfile.mkdtemp(prefix="jabali-mail-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def setup(self):
        t = self.t
        os.chmod(t, 0o755)
        self.users_dir = os.path.join(t, "users")
        self.maps_dir = os.path.join(t, "maps")
        self.mail_root = os.path.join(t, "mail")
        for d in (self.users_dir, self.maps_dir, self.mail_root, os.path.join(t, "locks"), os.path.join(t, "mods")):
            os.makedirs(d)
            os.chmod(d, 0o755)
        self.imap_port, self.lmtp_port, self.smtp_port = free_port(), free_port(), free_port()
        self.sink = Sink()
        self.pw1 = hash_pw("pw1")

        mods = os.path.join(t, "mods")
        shutil.copy(module_so(), os.path.join(mods, "mail.so"))
        os.chmod(os.path.join(mods, "mail.so"), 0o644)
        self.dv = os.path.join(t, "dovecot")
        self.dovecot_conf = os.path.join(self.dv, "dovecot.conf")
        self.pf = os.path.join(t, "postfix")
        self.settings = {
            "backend": "dovecot",
            "lock_dir": os.path.join(t, "locks"),
            "users_dir": self.users_dir,
            "maps_dir": self.maps_dir,
            "mail_root": self.mail_root,
            "dovecot_config": self.dovecot_conf,
            "postfix_config_dir": self.pf,
        }
        # The agent's reloader runs this for the module's postfix_unit.
        reload_cmd = ["/bin/sh", "-c", "exec %s -c '%s' reload" % (POSTFIX, self.pf)]
        self.agent = Agent(modules={"dir": mods, "test": None, "mail": {"enabled": True, "settings": self.settings}},
                           reload={"command": reload_cmd, "window_ms": 50})
        self.write_dovecot()
        self.write_postfix()
        # The first change creates the whole file set; Postfix then starts
        # with every table it names present. (The reload it asks for fails:
        # Postfix is not running yet.)
        expect_ok(self.call("mail.domain.upsert", {"domain": DOMAIN}))
        self.start_dovecot()
        self.start_postfix()

    def write_dovecot(self):
        os.makedirs(os.path.join(self.dv, "run"))
        os.makedirs(os.path.join(self.dv, "state"))
        users = os.path.join(self.users_dir, "users")
        with open(self.dovecot_conf, "w") as f:
            f.write("""base_dir = {dv}/run
state_dir = {dv}/state
instance_name = jbmail{pid}
log_path = {dv}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 1M
auth_cache_negative_ttl = 1h
first_valid_uid = {uid}
mail_uid = {uid}
mail_gid = {uid}
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins quota
submission_host = 127.0.0.1:{smtp}
postmaster_address = postmaster@{domain}
passdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  quota = maildir:User quota
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_max_redirects = 16
}}
""".format(dv=self.dv, pid=os.getpid(), uid=MAIL_UID, smtp=self.smtp_port, domain=DOMAIN, users=users,
           imap=self.imap_port, lmtp=self.lmtp_port))

    def write_postfix(self):
        pf = self.pf
        for d in ("spool", "data"):
            os.makedirs(os.path.join(pf, d))
        shutil.chown(os.path.join(pf, "data"), "postfix")
        m = self.maps_dir
        with open(os.path.join(pf, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
queue_directory = {pf}/spool
data_directory = {pf}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{domain}
mydestination =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {pf}/maillog
maillog_file_prefixes = /var, /dev/stdout, {t}
virtual_mailbox_domains = hash:{m}/domains
virtual_mailbox_maps = hash:{m}/mailboxes
virtual_alias_maps = hash:{m}/aliases
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
relayhost = [127.0.0.1]:{sink}
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
""".format(pf=pf, domain=DOMAIN, t=self.t, m=m, lmtp=self.lmtp_port, sink=self.sink.port))
        # The system's services, not chrooted (the queue is private), the
        # public smtpd only on our port.
        out = []
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                fields = line.split()
                if line.startswith("smtp ") and len(fields) > 1 and fields[1] == "inet":
                    line = "127.0.0.1:%d inet n - n - - smtpd\n" % self.smtp_port
                elif fields and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
                    fields[4] = "n"
                    line = " ".join(fields) + "\n"
                out.append(line)
        with open(os.path.join(pf, "master.cf"), "w") as f:
            f.writelines(out)

    def start_dovecot(self):
        subprocess.run(["doveconf", "-n", "-c", self.dovecot_conf], check=True, stdout=subprocess.DEVNULL)
        self.dovecot = subprocess.Popen([DOVECOT, "-F", "-c", self.dovecot_conf], stdin=subprocess.DEVNULL)
        wait_port(self.imap_port, self.dovecot)
        wait_port(self.lmtp_port, self.dovecot)

    def start_postfix(self):
        subprocess.run([POSTFIX, "-c", self.pf, "check"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.postfix_started = True
        with open(os.path.join(self.pf, "start-fg.log"), "wb") as out:
            self.postfix = subprocess.Popen([POSTFIX, "-c", self.pf, "start-fg"], stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT)
        wait_port(self.smtp_port, self.postfix)

    # ---- helpers ----

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def login(self, address, pw):
        """True when IMAP LOGIN succeeds."""
        m = imaplib.IMAP4("127.0.0.1", self.imap_port)
        try:
            m.login(address, pw)
        except imaplib.IMAP4.error:
            return False
        finally:
            try:
                m.logout()
            except Exception:
                pass
        return True

    def inbox(self, address, pw):
        """Subjects of the messages in INBOX."""
        m = imaplib.IMAP4("127.0.0.1", self.imap_port)
        try:
            m.login(address, pw)
            m.select("INBOX", readonly=True)
            typ, data = m.search(None, "ALL")
            subjects = []
            for num in data[0].split():
                typ, d = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                subjects.append(d[0][1].decode().strip().replace("Subject: ", ""))
            return subjects
        finally:
            m.logout()

    def wait_inbox(self, address, pw, subject):
        return wait_for("%r in %s's INBOX" % (subject, address), lambda: subject in self.inbox(address, pw))

    def send(self, rcpt, subject, sender="bob@remote.test", to=None, body="hello"):
        msg = "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@remote.test>\r\n\r\n%s\r\n" % (
            sender, to or rcpt, subject, subject.replace(" ", "."), body)
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=WAIT_S)
        try:
            s.sendmail(sender, [rcpt], msg)
        finally:
            s.quit()

    def rcpt_code(self, rcpt):
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=WAIT_S)
        try:
            s.ehlo()
            s.mail("bob@remote.test")
            code, _ = s.rcpt(rcpt)
            return code
        finally:
            s.quit()

    def reload_unit(self):
        units = expect_ok(self.call("agent.health"))["reloads"]
        return units.get("postfix.service", {"state": "idle", "requested": 0, "reloads": 0, "failed": 0})

    def queue_empty(self):
        out = subprocess.run(["postqueue", "-c", self.pf, "-p"], capture_output=True, text=True).stdout
        return "Mail queue is empty" in out

    def mailbox(self, local, pw=None, **kw):
        p = {"domain": DOMAIN, "local_part": local, "password_hash": pw or self.pw1}
        p.update(kw)
        return p

    def snapshot(self):
        out = {}
        for top in (self.users_dir, self.maps_dir, self.mail_root):
            for dirpath, dirs, files in os.walk(top):
                for n in dirs + files:
                    p = os.path.join(dirpath, n)
                    st = os.lstat(p)
                    data = None
                    if stat.S_ISREG(st.st_mode) and "/Maildir/" not in p:
                        with open(p, "rb") as f:
                            data = f.read()
                    elif stat.S_ISLNK(st.st_mode):
                        data = os.readlink(p)
                    out[p] = (st.st_ino, st.st_mtime_ns, st.st_mode, data)
        return out

    def close(self):
        try:
            if self.agent:
                self.agent.close()
        finally:
            try:
                if self.postfix_started:
                    subprocess.run([POSTFIX, "-c", self.pf, "stop"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                if self.postfix:
                    try:
                        self.postfix.wait(timeout=WAIT_S)
                    except subprocess.TimeoutExpired:
                        self.postfix.kill()
                        self.postfix.wait()
                if self.dovecot and self.dovecot.poll() is None:
                    self.dovecot.terminate()
                    try:
                        self.dovecot.wait(timeout=WAIT_S)
                    except subprocess.TimeoutExpired:
                        self.dovecot.kill()
                        self.dovecot.wait()
            finally:
                if self.sink:
                    self.sink.shutdown()
                    self.sink.server_close()
                shutil.rmtree(self.t, ignore_errors=True)

    def logs(self):
        out = []
        for p in (os.path.join(self.dv, "dovecot.log"), os.path.join(self.pf, "maillog")):
            try:
                with open(p, errors="replace") as f:
                    out.append("%s:\n%s" % (os.path.basename(p), f.read()[-3000:]))
            except OSError as e:
                out.append(str(e))
        return "\n".join(out)


def wait_port(port, proc):
    def up():
        assert proc.poll() is None, "the service exited (status %s)" % proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False
    wait_for("port %d" % port, up)


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
    for a in expect_golden(e, "mail"):
        for p in a.get("params", []):
            if p["name"] == "password_hash":
                assert p.get("secret") is True, a


@test
def domain_upsert_converges():
    e = env()
    before = e.snapshot()
    r = expect_ok(e.call("mail.domain.upsert", {"domain": DOMAIN}))
    assert r["changed"] is False, r
    r = expect_ok(e.call("mail.domain.upsert", {"domain": "other.test"}, dry_run=True))
    assert r["changed"] is True, r
    assert e.snapshot() == before, "a repeat or a dry run wrote something"
    with open(os.path.join(e.maps_dir, "domains")) as f:
        assert f.read().endswith("\n%s OK\n" % DOMAIN)


@test
def invalid_input_is_refused_before_anything_is_written():
    e = env()
    before = e.snapshot()
    cases = [
        (e.mailbox("alice", pw="secret"), "INVALID_PARAMS"),
        (e.mailbox("alice", pw="{SHA512-CRYPT}" + SHA_PW1), "INVALID_PARAMS"),
        (e.mailbox("alice", pw=SHA_PW1 + "\n"), "INVALID_PARAMS"),
        (e.mailbox("alice", pw=SHA_PW1 + ":0:0::/root"), "INVALID_PARAMS"),
        (e.mailbox("a/b"), "INVALID_PARAMS"),
        (e.mailbox("a\nb"), "INVALID_PARAMS"),
        (e.mailbox('a"b'), "INVALID_PARAMS"),
        (e.mailbox("Alice"), "INVALID_PARAMS"),
        (e.mailbox("-x"), "INVALID_PARAMS"),
        (e.mailbox("a:b"), "INVALID_PARAMS"),
        (dict(e.mailbox("alice"), domain="nowhere.test"), "NOT_FOUND"),
        (dict(e.mailbox("alice"), domain="Example.test"), "INVALID_PARAMS"),
        (dict(e.mailbox("alice"), quota_mib=-1), "INVALID_PARAMS"),
    ]
    for params, code in cases:
        expect_error(e.call("mail.mailbox.create", params), code)
    expect_error(e.call("mail.catchall.set", {"domain": "nowhere.test", "target": "x@remote.test"}), "NOT_FOUND")
    expect_error(e.call("mail.autoresponder.upsert", {"address": "alice@" + DOMAIN, "subject": "s", "body": "b",
                                                      "start": "2024-02-30"}), "INVALID_PARAMS")
    assert e.snapshot() == before, "a refused request wrote something"
    # The secret never reaches the audit, whatever the answer was.
    audit = open(e.agent.audit_path).read()
    assert SHA_PW1 not in audit and "secret\"" not in audit.replace('"secret":true', "")


@test
def create_then_login_and_receive():
    e = env()
    r = expect_ok(e.call("mail.mailbox.create", e.mailbox("alice", quota_mib=1), dry_run=True))
    assert r["changed"] is True, r
    assert not e.login("alice@" + DOMAIN, "pw1"), "a dry run created the mailbox"
    r = expect_ok(e.call("mail.mailbox.create", e.mailbox("alice", quota_mib=1)))
    assert r["changed"] is True and r["address"] == "alice@" + DOMAIN, r
    assert e.login("alice@" + DOMAIN, "pw1"), e.logs()
    assert not e.login("alice@" + DOMAIN, "wrong")
    home = os.path.join(e.mail_root, DOMAIN, "alice")
    st = os.stat(home)
    assert st.st_uid == MAIL_UID and stat.S_IMODE(st.st_mode) == 0o700, st
    st = os.stat(os.path.join(e.users_dir, "users"))
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0, st
    e.send("alice@" + DOMAIN, "first message")
    e.wait_inbox("alice@" + DOMAIN, "pw1", "first message")
    before = e.snapshot()
    r = expect_ok(e.call("mail.mailbox.create", e.mailbox("alice", quota_mib=1)))
    assert r["changed"] is False, r
    assert e.snapshot() == before, "a repeat wrote something"


@test
def get_list_usage():
    e = env()
    r = expect_ok(e.call("mail.mailbox.get", {"domain": DOMAIN, "local_part": "alice"}))
    assert r["address"] == "alice@" + DOMAIN and r["quota_mib"] == 1 and r["aliases"] == [], r
    assert "password_hash" not in r and "$6$" not in json.dumps(r), r
    expect_error(e.call("mail.mailbox.get", {"domain": DOMAIN, "local_part": "nobody"}), "NOT_FOUND")
    r = expect_ok(e.call("mail.mailbox.list", {"domain": DOMAIN}))
    assert [m["address"] for m in r["mailboxes"]] == ["alice@" + DOMAIN], r
    expect_error(e.call("mail.mailbox.list", {"domain": "nowhere.test"}), "NOT_FOUND")
    r = expect_ok(e.call("mail.mailbox.usage", {"domain": DOMAIN, "local_part": "alice"}))
    assert r["used_bytes"] > 0 and r["messages"] == 1 and r["quota_mib"] == 1, r


@test
def passwd_takes_effect_at_once():
    e = env()
    addr = "alice@" + DOMAIN
    assert e.login(addr, "pw1")
    for scheme, pw in (("BLF-CRYPT", "pw2"), ("ARGON2ID", "pw3"), ("SHA512-CRYPT", "pw4")):
        r = expect_ok(e.call("mail.mailbox.passwd", {"domain": DOMAIN, "local_part": "alice",
                                                      "password_hash": hash_pw(pw, scheme)}))
        assert r["changed"] is True and r.get("cache_flushed") is True, r
        assert e.login(addr, pw), "%s: the new password does not work; %s" % (scheme, e.logs())
        assert not e.login(addr, "pw1"), "%s: the old password still works" % scheme
    h = hash_pw("pw5")
    expect_ok(e.call("mail.mailbox.passwd", {"domain": DOMAIN, "local_part": "alice", "password_hash": h}))
    before = e.snapshot()
    r = expect_ok(e.call("mail.mailbox.passwd", {"domain": DOMAIN, "local_part": "alice", "password_hash": h}))
    assert r["changed"] is False, r
    assert e.snapshot() == before
    # A same-size rewrite within the same second is still seen.
    h2 = hash_pw("pw6")
    assert len(h2) == len(h)
    expect_ok(e.call("mail.mailbox.passwd", {"domain": DOMAIN, "local_part": "alice", "password_hash": h2}))
    assert e.login(addr, "pw6") and not e.login(addr, "pw5")
    expect_ok(e.call("mail.mailbox.passwd", {"domain": DOMAIN, "local_part": "alice",
                                              "password_hash": hash_pw("pw1")}))
    assert e.login(addr, "pw1")
    expect_error(e.call("mail.mailbox.passwd", {"domain": DOMAIN, "local_part": "nobody",
                                                 "password_hash": h}), "NOT_FOUND")
    log = e.agent.log() + open(e.agent.audit_path).read()
    for secret in (h, h2, SHA_PW1, e.pw1):
        assert secret not in log, "a password hash reached the log or the audit"


@test
def over_quota_delivery_is_refused():
    e = env()
    addr = "alice@" + DOMAIN
    big = "x" * 1000 + "\r\n"
    with smtplib.LMTP("127.0.0.1", e.lmtp_port) as l:
        code = None
        for i in range(3):
            try:
                l.sendmail("bob@remote.test", [addr], "Subject: big %d\r\n\r\n%s" % (i, big * 600))
            except smtplib.SMTPRecipientsRefused as ex:
                code = ex.recipients[addr][0]
                break
            except smtplib.SMTPDataError as ex:
                code = ex.smtp_code
                break
        assert code == 552, "delivery over a 1 MiB quota was not refused (%s)" % code
    r = expect_ok(e.call("mail.mailbox.set_quota", {"domain": DOMAIN, "local_part": "alice", "quota_mib": 100}))
    assert r["changed"] is True, r
    with smtplib.LMTP("127.0.0.1", e.lmtp_port) as l:
        l.sendmail("bob@remote.test", [addr], "Subject: big again\r\n\r\n" + big * 600)
    r = expect_ok(e.call("mail.mailbox.set_quota", {"domain": DOMAIN, "local_part": "alice", "quota_mib": 100}))
    assert r["changed"] is False, r
    assert expect_ok(e.call("mail.mailbox.usage", {"domain": DOMAIN, "local_part": "alice"}))["quota_mib"] == 100


@test
def forwarder_aliases_and_externals():
    e = env()
    addr = "alice@" + DOMAIN
    p = {"address": addr, "aliases": ["sales", "info"],
         "externals": [{"target": "out1@remote.test", "keep_copy": True}, {"target": "out2@remote.test"}]}
    r = expect_ok(e.call("mail.forwarder.upsert", p, dry_run=True))
    assert r["changed"] is True
    assert not os.path.exists(os.path.join(e.mail_root, DOMAIN, "alice", "sieve"))
    r = expect_ok(e.call("mail.forwarder.upsert", p))
    assert r["changed"] is True, r
    before = e.snapshot()
    assert expect_ok(e.call("mail.forwarder.upsert", p))["changed"] is False
    assert e.snapshot() == before
    assert os.readlink(os.path.join(e.mail_root, DOMAIN, "alice", ".dovecot.sieve")) == \
        "sieve/jabali-managed.sieve"
    e.send("sales@" + DOMAIN, "to sales", to="sales@" + DOMAIN)
    e.wait_inbox(addr, "pw1", "to sales")
    e.send(addr, "forward me")
    wait_for("forward to out1", lambda: e.sink.find("out1@remote.test", "forward me"))
    wait_for("forward to out2", lambda: e.sink.find("out2@remote.test", "forward me"))
    e.wait_inbox(addr, "pw1", "forward me")           # keep_copy: a copy stays
    r = expect_ok(e.call("mail.mailbox.get", {"domain": DOMAIN, "local_part": "alice"}))
    assert sorted(r["aliases"]) == ["info@" + DOMAIN, "sales@" + DOMAIN], r
    # An alias someone else has, or a mailbox's address, is CONFLICT.
    expect_ok(e.call("mail.mailbox.create", e.mailbox("carol")))
    expect_error(e.call("mail.forwarder.upsert", {"address": "carol@" + DOMAIN, "aliases": ["sales"]}), "CONFLICT")
    expect_error(e.call("mail.forwarder.upsert", {"address": addr, "aliases": ["carol"]}), "CONFLICT")
    expect_error(e.call("mail.mailbox.create", e.mailbox("sales")), "CONFLICT")
    expect_error(e.call("mail.forwarder.upsert", {"address": "nobody@" + DOMAIN}), "NOT_FOUND")
    # The full desired state: "info" goes, the forwards go.
    r = expect_ok(e.call("mail.forwarder.upsert", {"address": addr, "aliases": ["sales"]}))
    assert r["changed"] is True
    assert e.rcpt_code("info@" + DOMAIN) == 550
    assert not os.path.exists(os.path.join(e.mail_root, DOMAIN, "alice", ".dovecot.sieve"))
    r = expect_ok(e.call("mail.forwarder.delete", {"address": addr}))
    assert r["changed"] is True
    assert e.rcpt_code("sales@" + DOMAIN) == 550
    assert expect_ok(e.call("mail.forwarder.delete", {"address": addr}))["changed"] is False


@test
def user_sieve_script_is_never_overwritten():
    e = env()
    home = os.path.join(e.mail_root, DOMAIN, "carol")
    os.makedirs(os.path.join(home, "sieve"), exist_ok=True)
    with open(os.path.join(home, "sieve", "mine.sieve"), "w") as f:
        f.write("keep;\n")
    os.symlink("sieve/mine.sieve", os.path.join(home, ".dovecot.sieve"))
    before = e.snapshot()
    expect_error(e.call("mail.forwarder.upsert", {"address": "carol@" + DOMAIN,
                                                  "externals": [{"target": "x@remote.test"}]}), "CONFLICT")
    expect_error(e.call("mail.autoresponder.upsert", {"address": "carol@" + DOMAIN, "subject": "s",
                                                      "body": "b"}), "CONFLICT")
    # A file by the managed name that is not ours is not touched either.
    os.unlink(os.path.join(home, ".dovecot.sieve"))
    with open(os.path.join(home, "sieve", "jabali-managed.sieve"), "w") as f:
        f.write("discard;\n")
    expect_error(e.call("mail.autoresponder.upsert", {"address": "carol@" + DOMAIN, "subject": "s",
                                                      "body": "b"}), "CONFLICT")
    with open(os.path.join(home, "sieve", "jabali-managed.sieve")) as f:
        assert f.read() == "discard;\n"
    os.unlink(os.path.join(home, "sieve", "jabali-managed.sieve"))
    assert set(before) - set(e.snapshot()) == {os.path.join(home, ".dovecot.sieve")}


@test
def autoresponder_replies_once_per_sender():
    e = env()
    addr = "alice@" + DOMAIN
    p = {"address": addr, "subject": 'Away "for now" \\ back soon', "body": 'Out of office.\n"quoted"; discard;\n',
         "interval_days": 1}
    r = expect_ok(e.call("mail.autoresponder.upsert", p))
    assert r["changed"] is True, r
    assert expect_ok(e.call("mail.autoresponder.upsert", p))["changed"] is False
    e.send(addr, "vacation one", sender="eve@remote.test")
    e.wait_inbox(addr, "pw1", "vacation one")
    replies = wait_for("the autoresponse", lambda: e.sink.find("eve@remote.test"))
    assert "Out of office." in replies[0][2] and '"quoted"; discard;' in replies[0][2], replies[0][2]
    e.send(addr, "vacation two", sender="eve@remote.test")
    e.wait_inbox(addr, "pw1", "vacation two")
    wait_for("an empty queue", e.queue_empty)
    assert len(e.sink.find("eve@remote.test")) == 1, "a second reply within the interval"
    # With forwards too: one script does both.
    expect_ok(e.call("mail.forwarder.upsert", {"address": addr, "externals": [{"target": "out3@remote.test",
                                                                                "keep_copy": True}]}))
    e.send(addr, "both", sender="mallory@remote.test")
    wait_for("forward to out3", lambda: e.sink.find("out3@remote.test", "both"))
    wait_for("reply to mallory", lambda: e.sink.find("mallory@remote.test"))
    r = expect_ok(e.call("mail.autoresponder.delete", {"address": addr}))
    assert r["changed"] is True
    expect_ok(e.call("mail.forwarder.delete", {"address": addr}))
    assert not os.path.exists(os.path.join(e.mail_root, DOMAIN, "alice", "sieve", "jabali-managed.sieve"))
    assert expect_ok(e.call("mail.autoresponder.delete", {"address": addr}))["changed"] is False


@test
def catchall_delivers_unknown_local_parts():
    e = env()
    expect_error(e.call("mail.catchall.set", {"domain": DOMAIN, "target": "ghost@" + DOMAIN}), "INVALID_PARAMS")
    r = expect_ok(e.call("mail.catchall.set", {"domain": DOMAIN, "target": "carol@" + DOMAIN}))
    assert r["changed"] is True, r
    assert expect_ok(e.call("mail.catchall.set", {"domain": DOMAIN, "target": "carol@" + DOMAIN}))["changed"] is False
    e.send("whoever@" + DOMAIN, "caught", to="whoever@" + DOMAIN)
    e.wait_inbox("carol@" + DOMAIN, "pw1", "caught")
    e.send("alice@" + DOMAIN, "still alice's")
    e.wait_inbox("alice@" + DOMAIN, "pw1", "still alice's")
    assert "still alice's" not in e.inbox("carol@" + DOMAIN, "pw1")
    r = expect_ok(e.call("mail.catchall.set", {"domain": DOMAIN}))
    assert r["changed"] is True and r["target"] is None, r
    assert e.rcpt_code("whoever@" + DOMAIN) == 550


@test
def delete_mailbox_and_domain():
    e = env()
    addr = "carol@" + DOMAIN
    home = os.path.join(e.mail_root, DOMAIN, "carol")
    r = expect_ok(e.call("mail.mailbox.delete", {"domain": DOMAIN, "local_part": "carol"}, dry_run=True))
    assert r["changed"] is True and e.login(addr, "pw1")
    r = expect_ok(e.call("mail.mailbox.delete", {"domain": DOMAIN, "local_part": "carol"}))
    assert r["changed"] is True, r
    assert not e.login(addr, "pw1"), "a deleted mailbox can still log in"
    assert e.rcpt_code(addr) == 550
    assert os.path.isdir(os.path.join(home, "Maildir")), "the mail went without purge"
    r = expect_ok(e.call("mail.mailbox.delete", {"domain": DOMAIN, "local_part": "carol", "purge": True}))
    assert r["changed"] is True and not os.path.exists(home), r
    assert expect_ok(e.call("mail.mailbox.delete", {"domain": DOMAIN, "local_part": "carol"}))["changed"] is False
    before = e.snapshot()
    e2 = expect_error(e.call("mail.domain.delete", {"domain": DOMAIN}), "CONFLICT")
    assert "1 mailbox" in e2["error"], e2
    assert e.snapshot() == before
    u0 = e.reload_unit()
    r = expect_ok(e.call("mail.domain.delete", {"domain": DOMAIN, "purge": True}))
    assert r["changed"] is True
    assert not e.login("alice@" + DOMAIN, "pw1")
    assert not os.path.exists(os.path.join(e.mail_root, DOMAIN))
    # Its mail is no longer delivered here: refused by Dovecot (the sender
    # gets the non-delivery notice) until Postfix's reload, relayed off the
    # host after it.
    e.send("alice@" + DOMAIN, "after the domain went")
    wait_for("the bounce or the relayed message",
             lambda: e.sink.find("bob@remote.test", "after.the.domain.went") or
             e.sink.find("alice@" + DOMAIN, "after the domain went"))
    with open(os.path.join(e.maps_dir, "domains")) as f:
        assert DOMAIN not in f.read().split("\n", 1)[1]
    u = wait_for("the postfix reload", lambda: (lambda u: u["state"] == "idle" and
                                                u["reloads"] > u0["reloads"] and u)(e.reload_unit()))
    assert u["failed"] == u0["failed"], (u0, u)
    assert expect_ok(e.call("mail.domain.delete", {"domain": DOMAIN}))["changed"] is False


def main():
    agenttest.suite("mail module", "root, dovecot and postfix (tools/deps test)",
                    executable(DOVECOT, DOVEADM, POSTFIX, POSTMAP), lambda: ENV)


if __name__ == "__main__":
    main()
