"""A private MariaDB and a PowerDNS Authoritative server on loopback, for
the dns module's integration test and its benchmark.

MariaDB gets a fresh datadir (mariadb-install-db) in a temp directory, a
socket there and no TCP port; pdns runs in the foreground with a config
directory of its own, the gmysql backend on that socket as a real
database user, its DNS port and its HTTP API on 127.0.0.1 ports picked
at run time. Readiness is polled with a deadline (a query on the socket,
a DNS answer, an API answer), never slept for. Only the processes
started here are stopped, and the temp tree is removed.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from agenttest import free_port

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
MARIADB = "/usr/bin/mariadb"
PDNS = "/usr/sbin/pdns_server"
SCHEMA = "/usr/share/pdns-backend-mysql/schema/schema.mysql.sql"
DIG = "/usr/bin/dig"
WAIT_S = 60


def missing():
    """The programs this environment needs that are not installed."""
    need = (MARIADBD, INSTALL_DB, MARIADB, PDNS, SCHEMA, DIG,
            "/usr/lib/x86_64-linux-gnu/pdns/libgmysqlbackend.so")
    out = [p for p in need if not os.path.exists(p)]
    # The backend's directory depends on the architecture.
    if out and out[-1].endswith("libgmysqlbackend.so"):
        import glob
        if glob.glob("/usr/lib/*/pdns/libgmysqlbackend.so"):
            out.pop()
    return out


def dns_query(port, name, qtype=6, timeout=1.0):
    """One UDP query to 127.0.0.1:port; returns the rcode, or None."""
    qid = secrets.randbits(16)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        data = s.recv(4096)
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    return data[3] & 0x0F


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body))
        self.status = status
        self.body = body


class PdnsEnv:
    """MariaDB + pdns; close() stops them and removes the temp tree."""

    def __init__(self, extra_conf=None, prefix="jabali-dns-"):
        self.db = None
        self.pdns = None
        self.t = tempfile.mkdtemp(prefix=prefix)
        self.extra_conf = extra_conf or {}
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    # ---- MariaDB ----

    def setup(self):
        t = self.t
        os.chmod(t, 0o755)
        for d in ("data", "run", "pdns"):
            os.makedirs(os.path.join(t, d))
        self.sock = os.path.join(t, "run", "mysqld.sock")
        self.mycnf = os.path.join(t, "my.cnf")
        with open(self.mycnf, "w") as f:
            f.write("[client]\nsocket=%s\n[mysqld]\ndatadir=%s\nsocket=%s\npid-file=%s\n"
                    "skip-networking\nuser=root\nlog-error=%s\ninnodb_buffer_pool_size=64M\n"
                    "innodb_flush_log_at_trx_commit=2\n" %
                    (self.sock, os.path.join(t, "data"), self.sock, os.path.join(t, "run", "mysqld.pid"),
                     os.path.join(t, "mysqld.log")))
        subprocess.run([INSTALL_DB, "--no-defaults", "--datadir=" + os.path.join(t, "data"), "--user=root",
                        "--skip-test-db", "--auth-root-authentication-method=socket"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.db = subprocess.Popen([MARIADBD, "--defaults-file=" + self.mycnf], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT_S
        while self.sql("SELECT 1", check=False).returncode != 0:
            assert self.db.poll() is None, "mariadbd exited: %s" % self.tail("mysqld.log")
            assert time.monotonic() < deadline, "mariadbd never answered"
            time.sleep(0.05)    # polling a socket that has no readiness signal
        self.db_password = secrets.token_hex(12)
        self.sql("CREATE DATABASE powerdns; CREATE USER 'pdns'@'localhost' IDENTIFIED BY '%s'; "
                 "GRANT ALL ON powerdns.* TO 'pdns'@'localhost';" % self.db_password)
        with open(SCHEMA, "rb") as f:
            subprocess.run([MARIADB, "--defaults-file=" + self.mycnf, "powerdns"], input=f.read(), check=True)
        self.dns_port = free_port()
        self.api_port = free_port()
        self.api_key = secrets.token_hex(16)
        self.start_pdns()

    def sql(self, q, check=True, db=None):
        argv = [MARIADB, "--defaults-file=" + self.mycnf, "-N", "-B", "-e", q]
        if db:
            argv.append(db)
        return subprocess.run(argv, check=check, capture_output=True, text=True)

    # ---- pdns ----

    def pdns_conf(self):
        c = {
            "launch": "gmysql",
            "gmysql-socket": self.sock,
            "gmysql-dbname": "powerdns",
            "gmysql-user": "pdns",
            "gmysql-password": self.db_password,
            "gmysql-dnssec": "yes",
            "local-address": "127.0.0.1",
            "local-port": str(self.dns_port),
            "socket-dir": os.path.join(self.t, "pdns"),
            "guardian": "no",
            "daemon": "no",
            "setuid": "",
            "setgid": "",
            "disable-syslog": "yes",
            "security-poll-suffix": "",
            "default-soa-content": "ns1.@ hostmaster.@ 0 10800 3600 604800 3600",
            "webserver": "yes",
            "webserver-address": "127.0.0.1",
            "webserver-port": str(self.api_port),
            "webserver-allow-from": "127.0.0.1",
            "api": "yes",
            "api-key": self.api_key,
            "loglevel": "4",
        }
        c.update(self.extra_conf)
        return c

    def start_pdns(self):
        conf = os.path.join(self.t, "pdns", "pdns.conf")
        with open(conf, "w") as f:
            for k, v in self.pdns_conf().items():
                f.write("%s=%s\n" % (k, v))
        os.chmod(conf, 0o600)
        self.pdns_log = open(os.path.join(self.t, "pdns.log"), "ab")
        self.pdns = subprocess.Popen([PDNS, "--config-dir=" + os.path.join(self.t, "pdns")],
                                     stdin=subprocess.DEVNULL, stdout=self.pdns_log, stderr=self.pdns_log)
        deadline = time.monotonic() + WAIT_S
        while True:
            assert self.pdns.poll() is None, "pdns_server exited: %s" % self.tail("pdns.log")
            if dns_query(self.dns_port, "version.bind", qtype=16, timeout=0.2) is not None and self.api_up():
                return
            assert time.monotonic() < deadline, "pdns never answered: %s" % self.tail("pdns.log")
            time.sleep(0.02)

    def stop_pdns(self):
        if self.pdns and self.pdns.poll() is None:
            self.pdns.send_signal(signal.SIGTERM)
            try:
                self.pdns.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.pdns.kill()
                self.pdns.wait()
        self.pdns = None
        if getattr(self, "pdns_log", None):
            self.pdns_log.close()
            self.pdns_log = None

    def api_up(self):
        try:
            self.api("GET", "/servers/localhost", timeout=0.5)
            return True
        except (OSError, urllib.error.URLError):
            return False

    @property
    def api_url(self):
        return "http://127.0.0.1:%d" % self.api_port

    def api(self, method, path, body=None, timeout=10):
        """A call to the pdns API (this process's own client, not the module's)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + "/api/v1" + path, data=data, method=method,
                                     headers={"X-API-Key": self.api_key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read()
        except urllib.error.HTTPError as err:
            raise ApiError(err.code, err.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def stats(self):
        return {s["name"]: s.get("value") for s in self.api("GET", "/servers/localhost/statistics")
                if isinstance(s.get("value"), str)}

    def dig(self, name, qtype="A", *flags):
        """dig's output for one query (+norec, one try)."""
        r = subprocess.run([DIG, "@127.0.0.1", "-p", str(self.dns_port), name, qtype, "+norec", "+time=2",
                            "+tries=1"] + list(flags), capture_output=True, text=True, timeout=30)
        return r.stdout

    def tail(self, name, n=3000):
        try:
            with open(os.path.join(self.t, name), errors="replace") as f:
                return f.read()[-n:]
        except OSError as e:
            return str(e)

    def close(self):
        try:
            self.stop_pdns()
        finally:
            if self.db and self.db.poll() is None:
                self.db.send_signal(signal.SIGTERM)
                try:
                    self.db.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.db.kill()
                    self.db.wait()
            shutil.rmtree(self.t, ignore_errors=True)
