#!/usr/bin/env python3
"""Database stages of the backup module against a real MariaDB and a real
PostgreSQL 15, each started in the foreground on a private socket in a
temporary directory, and Debian's restic.

A database is backed up through backup.run, changed, restored through
backup.restore, and its checksums (MariaDB: CHECKSUM TABLE; PostgreSQL: an
md5 of every row in order) must equal those taken before the backup.

Faults are made with thin wrappers the module is configured to run (the
settings mariadb_dump and restic): they exec the real program unless a
marker file of the test exists, in which case the real program's output
is cut short and the wrapper kills itself, or the wrapper stops half way
until the test has killed the real restic (found through /proc) under it.

Needs root, restic, mariadb-server and postgresql (tools/deps test);
without them the test reports a single skipped case (TAP SKIP).
"""

import hashlib
import json
import os
import pwd
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import Agent, executable, expect_error, expect_ok, test  # noqa: E402
from test_backup import kill_job_sessions  # noqa: E402
from webstack import Account, module_dir  # noqa: E402

del agenttest._tests[:]        # test_backup's own cases run in their own file

RESTIC = "/usr/bin/restic"
MARIADBD = "/usr/sbin/mariadbd"
MARIADB = "/usr/bin/mariadb"
MARIADB_DUMP = "/usr/bin/mariadb-dump"
PGBIN = "/usr/lib/postgresql/15/bin"
PASSWORD = "db stage password 3e1d"
WAIT_S = 60
TERMINAL = ("succeeded", "partial", "failed", "cancelled", "interrupted")
ENV = None


def wait_for(what, fn, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


class MariaDB:
    """mariadbd in the foreground on a socket of its own (no TCP)."""

    def __init__(self, t):
        self.dir = os.path.join(t, "mysql")
        os.makedirs(os.path.join(self.dir, "run"))
        self.cnf = os.path.join(self.dir, "my.cnf")
        with open(self.cnf, "w") as f:
            f.write("[client]\nsocket=%(d)s/run/mysqld.sock\n"
                    "[mysqld]\ndatadir=%(d)s/data\nsocket=%(d)s/run/mysqld.sock\npid-file=%(d)s/run/mysqld.pid\n"
                    "skip-networking\nuser=root\nlog-error=%(d)s/error.log\ninnodb_buffer_pool_size=64M\n"
                    % {"d": self.dir})
        os.chmod(self.cnf, 0o600)
        r = sh(["mariadb-install-db", "--no-defaults", "--datadir=" + os.path.join(self.dir, "data"), "--user=root",
                "--skip-test-db"])
        assert r.returncode == 0, r.stderr
        self.proc = subprocess.Popen([MARIADBD, "--defaults-file=" + self.cnf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for("mariadbd", lambda: self.proc.poll() is None and sh([MARIADB, "--defaults-file=" + self.cnf,
                                                                       "-e", "select 1"]).returncode == 0)

    def sql(self, q, db=None, check=True):
        argv = [MARIADB, "--defaults-file=" + self.cnf, "--batch", "--skip-column-names", "-e", q]
        if db:
            argv.append(db)
        r = sh(argv)
        if check:
            assert r.returncode == 0, r.stderr
        return r

    def checksums(self, db):
        tables = self.sql("SHOW TABLES", db).stdout.split()
        out = self.sql("CHECKSUM TABLE " + ", ".join("`%s`.`%s`" % (db, t) for t in tables)).stdout
        return sorted(out.splitlines())

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(WAIT_S)


class Postgres:
    """postgres (15) in the foreground as the postgres user, on a socket
    directory of its own, peer authentication as on Debian."""

    def __init__(self, t):
        self.dir = os.path.join(t, "pg")
        self.sock = os.path.join(self.dir, "sock")
        data = os.path.join(self.dir, "data")
        os.makedirs(self.sock)
        pw = pwd.getpwnam("postgres")
        for p in (self.dir, self.sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        r = sh(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
                os.path.join(PGBIN, "initdb"), "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                "--auth-local=peer", "--auth-host=scram-sha-256"])
        assert r.returncode == 0, r.stderr
        self.proc = subprocess.Popen(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
                                      os.path.join(PGBIN, "postgres"), "-D", data, "-k", self.sock,
                                      "-c", "listen_addresses=", "-c", "fsync=off"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("postgres", lambda: self.proc.poll() is None and
                 sh([os.path.join(PGBIN, "pg_isready"), "-h", self.sock]).returncode == 0)

    def sql(self, q, db="postgres", check=True):
        r = sh(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
                os.path.join(PGBIN, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.sock,
                "-d", db, "-c", q])
        if check:
            assert r.returncode == 0, r.stderr
        return r

    def checksum(self, db):
        rows = self.sql("SELECT id, name, price, note FROM items ORDER BY id", db).stdout
        rows += self.sql("SELECT id, item_id, qty FROM orders ORDER BY id", db).stdout
        return hashlib.md5(rows.encode()).hexdigest(), rows.count("\n")

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)    # SIGINT: fast shutdown
            self.proc.wait(WAIT_S)


STALL_S = 15

WRAPPER_DUMP = """#!/bin/sh
# cut-dump: the dump's stream cut short, then the dump killed.
if [ -e '%(t)s/cut-dump' ]; then
        '%(dump)s' "$@" | head -c 20000
        kill -KILL $$
fi
exec '%(dump)s' "$@"
"""

WRAPPER_RESTIC = """#!/bin/sh
# hold-backup: the backup of a stream runs under this shell, which waits
# for the test (it kills that restic) before it goes on.
# cut-restore: `restic dump` cut short, then killed.
if [ -e '%(t)s/hold-backup' ] && [ "$1" = backup ]; then
        # An asynchronous command's stdin is /dev/null unless given.
        exec 3<&0
        '%(restic)s' "$@" <&3 3<&- &
        exec 3<&- </dev/null
        read -r line < '%(t)s/hold.fifo'
        wait $!
        exit $?
fi
if [ -e '%(t)s/cut-restore' ] && [ "$1" = dump ]; then
        '%(restic)s' "$@" | head -c 3000
        kill -KILL $$
fi
exec '%(restic)s' "$@"
"""


class Env:
    def __init__(self):
        self.agent = self.acct = self.maria = self.pg = None
        self.t = tempfile.mkdtemp(prefix="jabali-backup-db-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def wrapper(self, name, text):
        p = os.path.join(self.t, name)
        with open(p, "w") as f:
            f.write(text % {"t": self.t, "dump": MARIADB_DUMP, "restic": RESTIC})
        os.chmod(p, 0o755)
        return p

    def setup(self):
        t = self.t
        os.chmod(t, 0o711)      # postgres traverses it to its directory
        self.maria = MariaDB(t)
        self.pg = Postgres(t)
        self.secrets = os.path.join(t, "secrets")
        os.makedirs(self.secrets, mode=0o700)
        with open(os.path.join(self.secrets, "repo-pw"), "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(os.path.join(self.secrets, "repo-pw"), 0o600)
        self.local_root = os.path.join(t, "repos")
        os.makedirs(self.local_root, mode=0o700)
        self.cache = os.path.join(t, "cache")
        os.mkfifo(os.path.join(t, "hold.fifo"), 0o600)
        self.settings = {"restic": self.wrapper("restic-wrapper", WRAPPER_RESTIC), "secrets_dir": self.secrets,
                         "jobs_dir": os.path.join(t, "jobs"), "lock_dir": os.path.join(t, "locks"),
                         "cache_dir": self.cache, "local_root": self.local_root,
                         "mariadb_defaults_file": self.maria.cnf,
                         "mariadb_dump": self.wrapper("dump-wrapper", WRAPPER_DUMP),
                         "mariadb_client": MARIADB, "pg_dump": os.path.join(PGBIN, "pg_dump"),
                         "psql": os.path.join(PGBIN, "psql"), "pg_user": "postgres", "pg_host": self.pg.sock,
                         # A dump held up this long is stopped (the stuck-dump case); the
                         # others never pause a second.
                         "stall_timeout_s": STALL_S}
        homes = os.path.join(t, "home")
        os.makedirs(homes)
        self.acct = Account("jbd", homes)
        self.agent = Agent(modules={"dir": module_dir(t, ["backup"]), "test": None,
                                    "backup": {"enabled": True, "settings": self.settings}})

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def dest(self, name):
        return {"kind": "local", "location": os.path.join(self.local_root, name), "password_ref": "repo-pw"}

    def repo(self, name):
        expect_ok(self.call("backup.destination.test", {"destination": self.dest(name), "init": True}))
        return self.dest(name)

    def restic(self, repo, *args):
        env = {"PATH": "/usr/bin:/bin", "RESTIC_REPOSITORY": repo, "RESTIC_CACHE_DIR": self.cache,
               "RESTIC_PASSWORD_FILE": os.path.join(self.secrets, "repo-pw")}
        r = subprocess.run([RESTIC] + list(args), env=env, capture_output=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def snapshots(self, d):
        return json.loads(self.restic(d["location"], "snapshots", "--json"))

    def marker(self, name):
        return os.path.join(self.t, name)

    def job(self, job_id):
        def done():
            j = expect_ok(self.call("backup.job.get", {"job_id": job_id}))["job"]
            return j if j["state"] in TERMINAL else None
        return wait_for("job " + job_id, done)

    def backup(self, d, dbs, **extra):
        r = expect_ok(self.call("backup.run", dict({"destination": d, "user": self.acct.name, "home": False,
                                                    "databases": dbs}, **extra)))
        return self.job(r["job_id"])

    def restore(self, d, snapshot, dbs):
        r = expect_ok(self.call("backup.restore", {"destination": d, "user": self.acct.name, "snapshot_id": snapshot,
                                                   "databases": dbs}))
        return self.job(r["job_id"])

    def close(self):
        # The agent's stop may raise (valgrind's findings); the servers, the
        # runners, the account and the tree go whatever happened.
        try:
            if self.agent is not None:
                self.agent.close()
        finally:
            for x in (self.maria, self.pg):
                if x is not None:
                    x.close()
            if getattr(self, "settings", None):
                kill_job_sessions(self.settings["jobs_dir"])
            if self.acct is not None:
                self.acct.remove()
            shutil.rmtree(self.t, ignore_errors=True)


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


def maria_shop(e, db, rows=2000):
    m = e.maria
    m.sql("DROP DATABASE IF EXISTS `%s`; CREATE DATABASE `%s` CHARACTER SET utf8mb4" % (db, db))
    m.sql("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2), note TEXT);"
          "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, item_id INT, qty INT);"
          "INSERT INTO items SELECT seq, CONCAT('item ', seq, ' \\'q\\' é'), seq * 1.25, REPEAT('n', seq % 97)"
          "  FROM seq_1_to_" + str(rows) + ";"
          "INSERT INTO orders (item_id, qty) SELECT seq % 50 + 1, seq % 7 FROM seq_1_to_" + str(rows * 2) + ";"
          "CREATE TRIGGER orders_qty BEFORE INSERT ON orders FOR EACH ROW SET NEW.qty = GREATEST(NEW.qty, 1);"
          "CREATE FUNCTION total() RETURNS INT DETERMINISTIC RETURN (SELECT SUM(qty) FROM orders);", db)


def maria_case(suffix, repo, rows=2000):
    """The environment, a new shop database <account>_<suffix> and a new
    repository."""
    e = env()
    db = e.acct.name + "_" + suffix
    maria_shop(e, db, rows=rows)
    return e, db, e.repo(repo)


def stage(job, name):
    found = [s for s in job["stages"] if s["name"] == name]
    assert len(found) == 1, job
    return found[0]


@test
def mariadb_backup_and_restore_round_trip():
    e, db, d = maria_case("shop", "m1")
    before = e.maria.checksums(db)
    job = e.backup(d, [{"engine": "mariadb", "name": db}])
    assert job["state"] == "succeeded", job
    s = stage(job, "db:mariadb:" + db)
    assert s["state"] == "succeeded" and s["dump_exit_code"] == 0 and s["exit_code"] == 0, s
    assert s["summary"]["total_bytes_processed"] > 100000, s
    snaps = e.snapshots(d)
    assert [x["short_id"] for x in snaps] == [s["snapshot_id"]], snaps
    assert snaps[0]["paths"] == ["/mariadb/%s.sql" % db], snaps
    assert sorted(snaps[0]["tags"]) == sorted(["user=" + e.acct.name, "jabali-job=" + job["job_id"],
                                               "jabali-stage=db", "jabali-db=mariadb:" + db]), snaps
    text = e.restic(d["location"], "dump", snaps[0]["id"], "/mariadb/%s.sql" % db).decode()
    assert "CREATE TABLE `orders`" in text and "CREATE DEFINER" in text, text[:2000]
    # Change everything, then restore.
    e.maria.sql("DELETE FROM items WHERE id % 3 = 0; UPDATE orders SET qty = 99; DROP TABLE items;"
                "DROP TRIGGER orders_qty; DROP FUNCTION total; CREATE TABLE extra (x INT)", db)
    assert e.maria.checksums(db) != before
    r = e.restore(d, s["snapshot_id"], [{"engine": "mariadb", "name": db}])
    assert r["state"] == "succeeded" and r["kind"] == "restore", r
    rs = stage(r, "db:mariadb:" + db)
    assert rs["exit_code"] == 0 and rs["dump_exit_code"] == 0, rs
    # extra is not in the dump: it stays, and is left out of the comparison.
    e.maria.sql("DROP TABLE extra", db)
    assert e.maria.checksums(db) == before
    assert e.maria.sql("SELECT total()", db).stdout.strip() == e.maria.sql("SELECT SUM(qty) FROM orders", db).stdout.strip()
    assert e.maria.sql("SHOW TRIGGERS", db).stdout.count("orders_qty") == 1


@test
def postgresql_backup_and_restore_round_trip():
    e = env()
    db = e.acct.name + "_shop"
    e.pg.sql('DROP DATABASE IF EXISTS "%s"' % db)
    e.pg.sql('CREATE DATABASE "%s" TEMPLATE template0 ENCODING \'UTF8\'' % db)
    e.pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), note text);"
             "CREATE TABLE orders (id serial PRIMARY KEY, item_id int REFERENCES items(id), qty int);"
             "INSERT INTO items SELECT g, 'item ' || g || ' ''q'' é', g * 1.25, repeat('n', g % 97)"
             "  FROM generate_series(1, 2000) g;"
             "INSERT INTO orders (item_id, qty) SELECT g % 50 + 1, g % 7 FROM generate_series(1, 4000) g;", db)
    before = e.pg.checksum(db)
    assert before[1] == 6000
    d = e.repo("p1")
    job = e.backup(d, [{"engine": "postgresql", "name": db}])
    assert job["state"] == "succeeded", job
    s = stage(job, "db:postgresql:" + db)
    assert s["dump_exit_code"] == 0 and s["summary"]["total_bytes_processed"] > 50000, s
    e.pg.sql("DELETE FROM orders WHERE id % 2 = 0; UPDATE items SET price = 0; ALTER TABLE items ADD COLUMN x int",
             db)
    assert e.pg.sql("SELECT count(*) FROM orders", db).stdout.strip() == "2000"
    r = e.restore(d, s["snapshot_id"], [{"engine": "postgresql", "name": db}])
    assert r["state"] == "succeeded", r
    assert e.pg.checksum(db) == before
    cols = e.pg.sql("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns "
                    "WHERE table_name = 'items'", db).stdout.strip()
    assert cols == "id,name,price,note", cols

    # A restore cut short (restic dump killed half way) changes nothing:
    # psql was stopped before the end of its input, its transaction gone.
    e.pg.sql("UPDATE items SET price = 7 WHERE id < 10", db)
    changed = e.pg.checksum(db)
    open(e.marker("cut-restore"), "w").close()
    try:
        r = e.restore(d, s["snapshot_id"], [{"engine": "postgresql", "name": db}])
    finally:
        os.unlink(e.marker("cut-restore"))
    assert r["state"] == "failed" and r["error"]["code"] == "SERVICE_FAILED", r
    assert "signal 9" in r["error"]["message"], r
    assert e.pg.checksum(db) == changed


@test
def names_not_the_accounts_are_refused_before_anything_runs():
    e = env()
    d = e.repo("n1")
    jobs = os.path.join(e.settings["jobs_dir"])
    before = sorted(os.listdir(jobs)) if os.path.isdir(jobs) else []
    u = e.acct.name
    for db, code in (("otheruser_shop", "PERMISSION_DENIED"), (u, "PERMISSION_DENIED"), (u + "_", "PERMISSION_DENIED"),
                     (u + "x_shop", "PERMISSION_DENIED"), ("mysql", "PERMISSION_DENIED"),
                     (u + "_a`b", "INVALID_PARAMS"), (u + "_a;b", "INVALID_PARAMS"), (u + "_a b", "INVALID_PARAMS"),
                     (u + "_" + "a" * 60, "INVALID_PARAMS"), ("-" + u + "_x", "INVALID_PARAMS")):
        for engine in ("mariadb", "postgresql"):
            dbs = [{"engine": engine, "name": db}]
            expect_error(e.call("backup.run", {"destination": d, "user": u, "databases": dbs}), code)
            expect_error(e.call("backup.restore", {"destination": d, "user": u, "snapshot_id": "0" * 8,
                                                   "databases": dbs}), code)
    # PostgreSQL's limit is 63 bytes, MariaDB's 64.
    long = u + "_" + "a" * (63 - len(u))
    expect_error(e.call("backup.run", {"destination": d, "user": u,
                                       "databases": [{"engine": "postgresql", "name": long}]}), "INVALID_PARAMS")
    expect_error(e.call("backup.run", {"destination": d, "user": u, "databases": [{"engine": "sqlite", "name": u + "_x"}]}),
                 "INVALID_PARAMS")
    expect_error(e.call("backup.run", {"destination": d, "user": u, "databases": [{"engine": "mariadb", "name": u + "_x"},
                                                                                  {"engine": "mariadb", "name": u + "_x"}]}),
                 "INVALID_PARAMS")
    after = sorted(os.listdir(jobs)) if os.path.isdir(jobs) else []
    assert after == before, "a refused request started a job"
    assert e.snapshots(d) == []


@test
def a_missing_database_fails_with_not_found():
    e = env()
    d = e.repo("x1")
    for engine in ("mariadb", "postgresql"):
        job = e.backup(d, [{"engine": engine, "name": e.acct.name + "_nosuch"}])
        assert job["state"] == "failed" and job["error"]["code"] == "NOT_FOUND", job
        assert "snapshot_id" not in job["stages"][0], job
    assert e.snapshots(d) == [], "a failed dump left a snapshot"


@test
def restore_checks_the_snapshot_and_the_target():
    e, db, d = maria_case("shop", "r1", rows=10)
    other = e.acct.name + "_other"
    job = e.backup(d, [{"engine": "mariadb", "name": db}])
    snap = stage(job, "db:mariadb:" + db)["snapshot_id"]
    # The snapshot holds no dump of that database: refused, no job.
    expect_error(e.call("backup.restore", {"destination": d, "user": e.acct.name, "snapshot_id": snap,
                                           "databases": [{"engine": "mariadb", "name": other}]}), "NOT_FOUND")
    expect_error(e.call("backup.restore", {"destination": d, "user": e.acct.name, "snapshot_id": snap,
                                           "databases": [{"engine": "postgresql", "name": db}]}), "NOT_FOUND")
    expect_error(e.call("backup.restore", {"destination": d, "user": e.acct.name, "snapshot_id": "deadbeef",
                                           "databases": [{"engine": "mariadb", "name": db}]}), "NOT_FOUND")
    # Another account's snapshot of a database named like one of this
    # account's: made with restic directly, refused for its user tag.
    raw = subprocess.run([RESTIC, "backup", "--json", "--stdin", "--stdin-filename", "mariadb/%s.sql" % db,
                          "--tag", "user=someoneelse", "--tag", "jabali-db=mariadb:" + db],
                         input=b"DROP DATABASE mysql;\n", capture_output=True,
                         env={"PATH": "/usr/bin:/bin", "RESTIC_REPOSITORY": d["location"],
                              "RESTIC_CACHE_DIR": e.cache,
                              "RESTIC_PASSWORD_FILE": os.path.join(e.secrets, "repo-pw")})
    assert raw.returncode == 0, raw.stderr
    foreign = json.loads(raw.stdout.splitlines()[-1])["snapshot_id"]
    expect_error(e.call("backup.restore", {"destination": d, "user": e.acct.name, "snapshot_id": foreign,
                                           "databases": [{"engine": "mariadb", "name": db}]}), "NOT_FOUND")
    # Restoring into a database that is not there: the job fails, NOT_FOUND.
    e.maria.sql("DROP DATABASE `%s`" % db)
    r = e.restore(d, snap, [{"engine": "mariadb", "name": db}])
    assert r["state"] == "failed" and r["error"]["code"] == "NOT_FOUND", r
    assert e.maria.sql("SHOW DATABASES LIKE '%s'" % db).stdout.strip() == ""


@test
def files_and_databases_come_back_in_one_job():
    e = env()
    a = e.acct
    db = a.name + "_site"
    maria_shop(e, db, rows=50)
    before = e.maria.checksums(db)
    a.put("public_html/index.php", "<?php echo 'v1';\n")
    d = e.repo("fd1")
    job = e.backup(d, [{"engine": "mariadb", "name": db}], home=True)
    assert job["state"] == "succeeded", job
    home_snap = stage(job, "home")["snapshot_id"]
    db_snap = stage(job, "db:mariadb:" + db)["snapshot_id"]
    # The site breaks: a file and a table.
    a.put("public_html/index.php", "<?php echo 'broken';\n")
    e.maria.sql("DROP TABLE items", db)
    jobs = e.settings["jobs_dir"]
    started = sorted(os.listdir(jobs))
    p = {"destination": d, "user": a.name, "snapshot_id": home_snap, "files": True, "mode": "in_place",
         "paths": ["public_html"], "databases": [{"engine": "mariadb", "name": db, "snapshot_id": db_snap}]}
    # Refused before anything starts: a database without its own snapshot
    # (snapshot_id is the files'), a files snapshot named as a dump, mode
    # without files: true, and files: false with no database.
    no_snap = dict(p, databases=[{"engine": "mariadb", "name": db}])
    expect_error(e.call("backup.restore", no_snap), "INVALID_PARAMS")
    expect_error(e.call("backup.restore", dict(p, databases=[{"engine": "mariadb", "name": db,
                                                              "snapshot_id": home_snap}])), "NOT_FOUND")
    expect_error(e.call("backup.restore", {k: v for k, v in p.items() if k != "files"}), "INVALID_PARAMS")
    expect_error(e.call("backup.restore", {"destination": d, "user": a.name, "snapshot_id": home_snap,
                                           "files": False}), "INVALID_PARAMS")
    assert sorted(os.listdir(jobs)) == started, "a refused restore started a job"
    r = e.job(expect_ok(e.call("backup.restore", p))["job_id"])
    assert r["state"] == "succeeded", r
    assert [s["name"] for s in r["stages"]] == ["files", "db:mariadb:" + db], r
    with open(os.path.join(a.home, "public_html", "index.php")) as f:
        assert "v1" in f.read()
    assert e.maria.checksums(db) == before


@test
def a_dump_stuck_on_a_lock_is_stopped_as_stalled():
    e, db, d = maria_case("stuck", "st1", rows=10)
    # Another session holds a table's write lock: mariadb-dump waits for
    # it (lock_wait_timeout is a year) and restic, reading its stream,
    # shows no progress.
    holder = subprocess.Popen([MARIADB, "--defaults-file=" + e.maria.cnf, "--batch", "--unbuffered", "--skip-column-names",
                               db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("LOCK TABLES items WRITE; SELECT 'locked';\n")
        holder.stdin.flush()
        ready, _, _ = select.select([holder.stdout], [], [], WAIT_S)
        assert ready and holder.stdout.readline().strip() == "locked", "no table lock"
        started = time.monotonic()
        job = e.backup(d, [{"engine": "mariadb", "name": db}])
        took = time.monotonic() - started
    finally:
        holder.stdin.close()
        holder.wait(WAIT_S)
    s = stage(job, "db:mariadb:" + db)
    assert job["state"] == "failed" and job["error"]["code"] == "JOB_STALLED", job
    assert s["state"] == "failed" and "snapshot_id" not in s and s.get("stale_locks_removed") is True, s
    assert took >= STALL_S, took
    # The dump and restic are gone, the repository holds no lock and no
    # snapshot; with the lock released the same backup succeeds.
    assert not [p for p in os.listdir("/proc") if p.isdigit() and "mariadb-dump" in cmdline(p) and db in cmdline(p)]
    assert os.listdir(os.path.join(d["location"], "locks")) == []
    assert e.snapshots(d) == []
    assert e.backup(d, [{"engine": "mariadb", "name": db}])["state"] == "succeeded"


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@test
def a_dump_cut_short_fails_and_leaves_no_snapshot():
    e, db, d = maria_case("big", "f1", rows=5000)
    open(e.marker("cut-dump"), "w").close()
    try:
        job = e.backup(d, [{"engine": "mariadb", "name": db}])
    finally:
        os.unlink(e.marker("cut-dump"))
    assert job["state"] == "failed" and job["error"]["code"] == "DUMP_FAILED", job
    s = stage(job, "db:mariadb:" + db)
    # restic itself saw a clean end of file and wrote a snapshot: forgotten.
    assert s["exit_code"] == 0 and "snapshot_id" not in s and len(s["snapshot_forgotten"]) == 8, s
    assert "signal 9" in s["error"]["message"], s
    assert e.snapshots(d) == []
    # The same database backs up fine once the dump is whole.
    ok = e.backup(d, [{"engine": "mariadb", "name": db}])
    assert ok["state"] == "succeeded", ok
    assert len(e.snapshots(d)) == 1


def restic_under(job_id):
    """The pid of the real restic a job's stage runs (its tag names the job)."""
    tag = ("jabali-job=" + job_id).encode()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[0] == RESTIC.encode() and tag in argv:
            return int(p)
    return None


@test
def restic_killed_mid_stream_fails():
    e, db, d = maria_case("shop", "k1", rows=50)
    open(e.marker("hold-backup"), "w").close()
    try:
        r = expect_ok(e.call("backup.run", {"destination": d, "user": e.acct.name, "home": False,
                                            "databases": [{"engine": "mariadb", "name": db}]}))
        pid = wait_for("restic of the job", lambda: restic_under(r["job_id"]))
        os.kill(pid, 9)
        with open(os.path.join(e.t, "hold.fifo"), "w") as f:
            f.write("go\n")
        job = e.job(r["job_id"])
    finally:
        os.unlink(e.marker("hold-backup"))
    assert job["state"] == "failed" and job["error"]["code"] == "SERVICE_FAILED", job
    assert "snapshot_id" not in job["stages"][0], job
    assert e.snapshots(d) == []
    # The repository is still usable.
    assert e.backup(d, [{"engine": "mariadb", "name": db}])["state"] == "succeeded"


def main():
    agenttest.suite("backup database stages", "root, restic, mariadb-server, postgresql (tools/deps test)",
                    executable(RESTIC, MARIADBD, MARIADB_DUMP, os.path.join(PGBIN, "postgres")), lambda: ENV)


if __name__ == "__main__":
    main()
