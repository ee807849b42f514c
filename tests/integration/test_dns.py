#!/usr/bin/env python3
"""The dns module against a real PowerDNS on a real MariaDB.

A private MariaDB and pdns_server (gmysql backend, DNS and HTTP API on
127.0.0.1 ports picked at run time) come from dnsenv.py. The agent's dns
module talks to the API through a small counting HTTP proxy run by this
process, so that "no write" is a count of the module's non-GET requests
that can fail; a second agent talks to pdns directly for the test that
stops pdns. Every effect is checked from outside: with dig against pdns's
DNS port, and with this process's own API client.

Needs pdns-server, pdns-backend-mysql, mariadb-server and dig (Debian
bind9-dnsutils); without them the test reports a single skipped case
(TAP SKIP), never a failure. Nothing sleeps to synchronise: readiness is
polled with a deadline.
"""

import base64
import hashlib
import http.client
import http.server
import json
import os
import select
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
from agenttest import BUILDDIR, Agent, expect_error, expect_golden, expect_ok, frame, read_frame, test  # noqa: E402
import dnsenv  # noqa: E402

WAIT_S = 30
MAX_RECORDS = 30        # the module's cap on records per zone, as configured here


def module_so():
    p = os.path.join(BUILDDIR, "modules", "dns", ".libs", "dns.so")
    if os.path.exists(p):
        return p
    return os.environ.get("JABALI_DNS_SO", p)


# ---- a counting proxy in front of the pdns API ----

class CountingProxy:
    """Forwards HTTP/1.1 requests to pdns's API and counts them by method."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.counts = {}
        self.log = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                with proxy.lock:
                    proxy.counts[self.command] = proxy.counts.get(self.command, 0) + 1
                    proxy.log.append((self.command, self.path))
                c = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                try:
                    hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("x-api-key", "content-type")}
                    c.request(self.command, self.path, body=body, headers=hdrs)
                    r = c.getresponse()
                    data = r.read()
                except OSError:
                    self.close_connection = True
                    return
                finally:
                    c.close()
                self.send_response(r.status)
                ctype = r.getheader("Content-Type")
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def writes(self):
        with self.lock:
            return sum(v for k, v in self.counts.items() if k != "GET")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---- the environment ----

class Env:
    def __init__(self):
        self.pdns = None
        self.proxy = None
        self.agent = None
        self.direct = None
        self.t = tempfile.mkdtemp(prefix="jabali-dnstest-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def setup(self):
        os.chmod(self.t, 0o755)
        self.notify_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.notify_sock.bind(("127.0.0.1", 0))
        self.notify_port = self.notify_sock.getsockname()[1]
        # primary=yes: pdns sends the NOTIFYs dns.notify queues.
        self.pdns = dnsenv.PdnsEnv(extra_conf={"primary": "yes"})
        self.proxy = CountingProxy(self.pdns.api_port)
        self.key_file = os.path.join(self.t, "pdns-api.key")
        with open(os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(self.pdns.api_key + "\n")
        mods = os.path.join(self.t, "mods")
        os.makedirs(mods)
        shutil.copy(module_so(), os.path.join(mods, "dns.so"))
        os.chmod(os.path.join(mods, "dns.so"), 0o644)
        os.chmod(mods, 0o755)
        self.mods = mods
        self.agent = self.make_agent("http://127.0.0.1:%d" % self.proxy.port)

    def make_agent(self, url, **settings):
        state = tempfile.mkdtemp(prefix="state-", dir=self.t)
        s = {"api_url": url, "api_key_file": self.key_file, "max_records": MAX_RECORDS,
             "state_dir": os.path.join(state, "dns")}
        s.update(settings)
        return Agent(modules={"dir": self.mods, "test": None,
                              "dns": {"enabled": True, "workers": {"max": 8, "queue": 256}, "settings": s}},
                     limits={"max_connections_per_uid": 256})

    def direct_agent(self):
        """An agent whose module talks to pdns without the proxy."""
        if self.direct is None:
            self.direct = self.make_agent(self.pdns.api_url)
        return self.direct

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def call_any(self, action, params):
        """A call whose answer may lack the request_id (a frame the
        master refuses as a whole)."""
        c = self.agent.client()
        try:
            c.send(action, params)
            return c.recv()
        finally:
            c.close()

    def zone_state(self, zone):
        """The zone as pdns holds it (this process's own API client),
        records sorted: what "byte-identical" compares."""
        z = self.pdns.api("GET", "/servers/localhost/zones/%s." % zone)
        rr = sorted((r["name"], r["type"], r["ttl"], sorted((x["content"], x["disabled"]) for x in r["records"]))
                    for r in z["rrsets"])
        meta = sorted((m["kind"], sorted(m["metadata"]))
                      for m in self.pdns.api("GET", "/servers/localhost/zones/%s./metadata" % zone))
        return {"serial": z["serial"], "edited_serial": z["edited_serial"], "rrsets": rr, "meta": meta,
                "dnssec": z["dnssec"]}

    def close(self):
        for a in (self.agent, self.direct):
            try:
                if a:
                    a.close()
            except Exception:
                pass
        if self.proxy:
            self.proxy.close()
        try:
            if self.pdns:
                self.pdns.close()
        finally:
            if getattr(self, "notify_sock", None):
                self.notify_sock.close()
            shutil.rmtree(self.t, ignore_errors=True)


ENV = None


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


# ---- dig ----

def dig(name, qtype="A", *flags):
    """(status, [(owner, type, rdata)]) from dig against pdns."""
    out = ENV.pdns.dig(name, qtype, "+noall", "+comments", "+answer", *flags)
    status = None
    answers = []
    section = None
    for line in out.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
        if line.startswith(";; ANSWER SECTION"):
            section = "answer"
            continue
        if line.startswith(";") or not line.strip():
            continue
        if section == "answer" or not line.startswith(";"):
            parts = line.split(None, 4)
            if len(parts) == 5:
                answers.append((parts[0], parts[3], parts[4]))
    assert status is not None, "no answer from pdns for %s %s: %r" % (name, qtype, out)
    return status, answers


def hexrec(text):
    """TLSA or DS rdata as dig prints it (hex in upper-case groups) in
    the module's form."""
    f = text.split()
    return " ".join(f[:3] + ["".join(f[3:]).lower()])


def rdata(name, qtype):
    status, ans = dig(name, qtype)
    assert status == "NOERROR", (name, qtype, status)
    return sorted(r for _, t, r in ans if t == qtype)


# ---- requests ----

ZONE = "alltypes.test"
HEX64 = "0123456789abcdef" * 4
LONG_TXT = "v=DKIM1; k=rsa; p=" + "A" * 600


def rec(name, rtype, content, **kw):
    r = {"name": name, "type": rtype, "content": content}
    r.update(kw)
    return r


def all_types():
    return [
        rec("@", "A", "192.0.2.1"),
        rec("www", "A", "192.0.2.10", ttl=300),
        rec("www", "A", "192.0.2.11", ttl=300),
        rec("www", "AAAA", "2001:DB8:0:0::10", ttl=300),
        rec("alias", "CNAME", "www.alltypes.test"),
        rec("@", "MX", "mail.alltypes.test", priority=10),
        rec("@", "MX", "mx2.example.net.", priority=20),
        rec("mail", "A", "192.0.2.25"),
        rec("@", "TXT", "v=spf1 mx -all"),
        rec("dkim._domainkey", "TXT", LONG_TXT),
        rec("quote", "TXT", 'say "hi" \\ caf\u00e9'),
        rec("_sip._tcp", "SRV", "5 5060 sip.alltypes.test", priority=10),
        rec("sip", "A", "192.0.2.50"),
        rec("@", "CAA", "0 issue letsencrypt.org"),
        rec("@", "CAA", '0 iodef "mailto:security@alltypes.test"'),
        rec("1", "PTR", "host.example.net"),
        rec("_443._tcp.www", "TLSA", "3 1 1 " + HEX64.upper()),
        rec("sub", "NS", "ns1.sub.alltypes.test"),
        rec("ns1.sub", "A", "192.0.2.53"),
        rec("sub", "DS", "12345 13 2 " + HEX64),
        rec("*.wild", "A", "192.0.2.99"),
        rec("off", "A", "192.0.2.77", disabled=True),
    ]


def zone_params(zone=ZONE, records=None, **kw):
    """An upsert of the whole zone; the main zone also notifies this
    process (dns.notify is checked against it)."""
    p = {"zone": zone, "records": all_types() if records is None else records,
         "nameservers": ["ns1.%s" % zone, "ns2.example.net"]}
    if zone == ZONE:
        p["also_notify"] = ["127.0.0.1:%d" % ENV.notify_port]
    p.update(kw)
    return p


# ---- the cases, in order: later ones build on earlier ones ----


@test
def golden_contract():
    e = env()
    expect_golden(e, "dns")


@test
def every_type_is_served():
    e = env()
    r = expect_ok(e.call("dns.zone.upsert", zone_params()))
    assert r["changed"] is True and r["created"] is True, r
    z = ZONE + "."
    assert rdata(z, "A") == ["192.0.2.1"]
    assert rdata("www." + z, "A") == ["192.0.2.10", "192.0.2.11"]
    assert rdata("www." + z, "AAAA") == ["2001:db8::10"]
    st, ans = dig("alias." + z, "A")
    assert st == "NOERROR" and ("alias." + z, "CNAME", "www." + z) in ans, ans
    assert rdata(z, "MX") == ["10 mail.alltypes.test.", "20 mx2.example.net."]
    assert rdata(z, "NS") == ["ns1.alltypes.test.", "ns2.example.net."]
    assert rdata(z, "TXT") == ['"v=spf1 mx -all"']
    chunks = rdata("dkim._domainkey." + z, "TXT")[0]
    parts = [p.strip('"') for p in chunks.split('" "')]
    assert "".join(parts) == LONG_TXT and max(len(p) for p in parts) <= 255 and len(parts) == 3, chunks
    assert rdata("quote." + z, "TXT") == ['"say \\"hi\\" \\\\ caf\\195\\169"'], rdata("quote." + z, "TXT")
    assert rdata("_sip._tcp." + z, "SRV") == ["10 5 5060 sip.alltypes.test."]
    assert rdata(z, "CAA") == ['0 iodef "mailto:security@alltypes.test"', '0 issue "letsencrypt.org"']
    assert rdata("1." + z, "PTR") == ["host.example.net."]
    assert [hexrec(r) for r in rdata("_443._tcp.www." + z, "TLSA")] == ["3 1 1 " + HEX64]
    assert [hexrec(r) for r in rdata("sub." + z, "DS")] == ["12345 13 2 " + HEX64]
    st, ans = dig("host.sub." + z, "A")      # a referral: NS in the authority section, not an answer
    assert st == "NOERROR" and not ans, (st, ans)
    assert rdata("anything.wild." + z, "A") == ["192.0.2.99"]
    assert dig("off." + z, "A")[0] == "NXDOMAIN", "a disabled record is served"
    soa = rdata(z, "SOA")[0].split()
    assert soa[:2] == ["ns1.alltypes.test.", "hostmaster.alltypes.test."] and soa[3:] == \
        ["10800", "3600", "604800", "3600"], soa


@test
def identical_upsert_writes_nothing():
    e = env()
    before = e.zone_state(ZONE)
    soa = rdata(ZONE + ".", "SOA")
    w0, n0 = e.proxy.writes(), len(e.proxy.log)
    # Converged a moment ago: the memo answers, pdns is not asked at all.
    for _ in range(3):
        r = expect_ok(e.call("dns.zone.upsert", zone_params()))
        assert r["changed"] is False and r["checked"] == "memo" and r["diff"] == {"rrsets": [], "metadata": []}, r
    assert len(e.proxy.log) == n0, "the memo did not spare pdns: %r" % e.proxy.log[n0:]
    # verify: read and diff what pdns holds.
    for _ in range(3):
        r = expect_ok(e.call("dns.zone.upsert", zone_params(verify=True)))
        assert r["changed"] is False and r["checked"] == "pdns" and r["diff"] == {"rrsets": [], "metadata": []}, r
        assert r["serial"] == before["serial"], r
    # The same zone written in other forms (order, case, absolute names) is the same zone.
    recs = list(reversed(all_types()))
    recs[0] = rec("OFF.alltypes.test.", "A", "192.0.2.77", disabled=True)
    for verify in (False, True):
        r = expect_ok(e.call("dns.zone.upsert", zone_params(records=recs, verify=verify,
                                                            nameservers=["ns1.ALLTYPES.test.", "ns2.example.net"])))
        assert r["changed"] is False, r
    assert e.proxy.writes() == w0, "an identical upsert wrote to pdns: %r" % e.proxy.log[-5:]
    assert e.zone_state(ZONE) == before
    assert rdata(ZONE + ".", "SOA") == soa, "the serial moved without a change"


@test
def dry_run_reports_the_diff_and_writes_nothing():
    e = env()
    before = e.zone_state(ZONE)
    w0 = e.proxy.writes()
    recs = [r for r in all_types() if r["name"] != "www"] + [rec("new", "A", "192.0.2.200")]
    r = expect_ok(e.call("dns.zone.upsert", zone_params(records=recs, also_notify=["192.0.2.9"]), dry_run=True))
    assert r["changed"] is True, r
    got = sorted((d["name"], d["type"], d["action"]) for d in r["diff"]["rrsets"])
    assert got == [("new.alltypes.test.", "A", "create"), ("www.alltypes.test.", "A", "delete"),
                   ("www.alltypes.test.", "AAAA", "delete")], got
    assert r["diff"]["metadata"] == [{"kind": "ALSO-NOTIFY", "values": ["192.0.2.9"]}], r
    r = expect_ok(e.call("dns.zone.upsert", zone_params(zone="nothere.test"), dry_run=True))
    assert r["changed"] is True and r["created"] is True and len(r["diff"]["rrsets"]) > 10, r
    r = expect_ok(e.call("dns.zone.delete", {"zone": ZONE}, dry_run=True))
    assert r["changed"] is True, r
    assert e.proxy.writes() == w0, "a dry run wrote: %r" % e.proxy.log[-5:]
    assert e.zone_state(ZONE) == before
    assert dig("nothere.test.", "SOA")[0] == "REFUSED"


@test
def removed_rrsets_vanish_at_once():
    e = env()
    z = ZONE + "."
    # Answers in pdns's packet cache first, so that a stale window would show.
    assert rdata("www." + z, "A") and rdata("www." + z, "AAAA") and rdata(z, "CAA")
    serial0 = e.zone_state(ZONE)["serial"]
    w0 = e.proxy.writes()
    recs = [r for r in all_types() if r["name"] != "www" and r["type"] != "CAA"]
    recs.append(rec("www", "TXT", "only text now"))
    r = expect_ok(e.call("dns.zone.upsert", zone_params(records=recs)))
    assert r["changed"] is True, r
    assert e.proxy.writes() == w0 + 1, "expected exactly one PATCH: %r" % e.proxy.log[-5:]
    assert e.proxy.log[-1][0] == "PATCH", e.proxy.log[-1]
    st, ans = dig("www." + z, "A")
    assert st == "NOERROR" and not ans, "www A still answered: %r" % ans        # NODATA
    assert dig(z, "CAA") == ("NOERROR", []), dig(z, "CAA")
    assert rdata("www." + z, "TXT") == ['"only text now"']
    # www has a name below it (_443._tcp.www): without records it stays
    # an empty non-terminal (NODATA); a leaf goes altogether (NXDOMAIN).
    assert rdata("mail." + z, "A") == ["192.0.2.25"]
    recs = [r for r in recs if r["name"] not in ("www", "mail")]
    expect_ok(e.call("dns.zone.upsert", zone_params(records=recs)))
    assert dig("www." + z, "TXT") == ("NOERROR", [])
    assert dig("mail." + z, "A")[0] == "NXDOMAIN"
    assert dig("_443._tcp.www." + z, "TLSA")[0] == "NOERROR", "the name below www went too"
    serial1 = e.zone_state(ZONE)["serial"]
    assert serial1 > serial0, (serial0, serial1)
    # And back to the full zone for the cases below.
    expect_ok(e.call("dns.zone.upsert", zone_params()))
    assert rdata("www." + z, "A") == ["192.0.2.10", "192.0.2.11"]


HOSTILE = [
    (rec("a", "A", "192.0.2.256"), "records[1].content"),
    (rec("a", "A", "192.0.2.1\n"), "records[1].content"),
    (rec("a", "A", "192.0.2.1\u0000"), None),
    (rec("a", "AAAA", "192.0.2.1"), "records[1].content"),
    (rec("a", "TXT", "x\ny"), "records[1].content"),
    (rec("a", "TXT", "x\ty"), "records[1].content"),
    (rec("a", "TXT", "x\u007fy"), "records[1].content"),
    (rec("a", "TXT", "x\u0001y"), "records[1].content"),
    (rec("a\nb", "A", "192.0.2.1"), "records[1].name"),
    (rec("a b", "A", "192.0.2.1"), "records[1].name"),
    (rec("a;b", "A", "192.0.2.1"), "records[1].name"),
    (rec("b\u00fccher", "A", "192.0.2.1"), "records[1].name"),
    (rec("x" * 64, "A", "192.0.2.1"), "records[1].name"),
    (rec(".".join(["y" * 63] * 4), "A", "192.0.2.1"), "records[1].name"),
    (rec("evil.example.org.", "A", "192.0.2.1"), "records[1].name"),
    (rec("a.*", "A", "192.0.2.1"), "records[1].name"),
    (rec("ab--c", "A", "192.0.2.1"), "records[1].name"),
    (rec("www", "CNAME", "elsewhere.example.net"), "records["),
    (rec("@", "CNAME", "elsewhere.example.net"), "records[1].type"),
    (rec("@", "NS", "ns9.example.net"), "records[1].type"),
    (rec("@", "SOA", "a. b. 1 2 3 4 5"), "records[1].type"),
    (rec("a", "HINFO", "x y"), "records[1].type"),
    (rec("a", "MX", "mail.example.net"), "records[1].priority"),
    (rec("a", "MX", "mail", priority=10), "records[1].content"),
    (rec("a", "MX", "mail.example.net", priority=65536), "records[1].priority"),
    (rec("a", "A", "192.0.2.1", priority=1), "records[1].priority"),
    (rec("a", "A", "192.0.2.1", ttl=1), "records[1].ttl"),
    (rec("a", "A", "192.0.2.1", ttl=2 ** 31), "records[1].ttl"),
    (rec("a", "A", "192.0.2.1", ttl=-1), "records[1].ttl"),
    (rec("a", "SRV", "5 99999 sip.example.net", priority=1), "records[1].content"),
    (rec("a", "CAA", '0 issue "a"b"'), "records[1].content"),
    (rec("a", "CAA", "0 is-sue a.example"), "records[1].content"),
    (rec("a", "TLSA", "3 1 1 abc"), "records[1].content"),
    (rec("a", "TLSA", "3 1 1 " + "zz" * 32), "records[1].content"),
    (rec("a", "DS", "1 13 2 " + HEX64), "records[1].name"),        # no delegation at a
    (rec("sub", "DS", "1 13 2 abcd"), "records[1].content"),
    (rec("a", "PTR", "target"), "records[1].content"),
    (rec("a", "TXT", "x" * 4097), "records[1].content"),
    (rec("a", "TXT", ""), "records[1].content"),
    ({"name": "a", "type": "A"}, "records[1]"),
    ({"name": "a", "type": "A", "content": "192.0.2.1", "extra": 1}, "records[1]"),
    ({"name": "a", "type": "A", "content": 3232235777}, "records[1].content"),
]


def refused(resp, lead, what):
    """INVALID_PARAMS led by the field; with lead None, a string the frame
    check refuses (\u0000) may come back as INVALID_JSON instead."""
    if lead is None and resp.get("code") == "INVALID_JSON":
        return
    expect_error(resp, "INVALID_PARAMS")
    if lead:
        assert resp["error"].startswith(lead), (what, resp["error"])


@test
def memo_is_checked_against_pdns_when_asked():
    e = env()
    z = ZONE + "."
    expect_ok(e.call("dns.zone.upsert", zone_params(verify=True)))
    # A change behind the module's back (another API client).
    e.pdns.api("PATCH", "/servers/localhost/zones/" + z,
               {"rrsets": [{"name": "www." + z, "type": "A", "changetype": "DELETE"}]})
    assert dig("www." + z, "A") == ("NOERROR", [])
    r = expect_ok(e.call("dns.zone.upsert", zone_params()))
    assert r["changed"] is False and r["checked"] == "memo", r     # until verify_after_s, or verify
    r = expect_ok(e.call("dns.zone.upsert", zone_params(verify=True)))
    assert r["changed"] is True and r["checked"] == "pdns", r
    assert [(d["name"], d["type"], d["action"]) for d in r["diff"]["rrsets"]] == [("www." + z, "A", "create")], r
    assert rdata("www." + z, "A") == ["192.0.2.10", "192.0.2.11"]
    # A zone deleted through the module leaves no memo behind.
    expect_ok(e.call("dns.zone.upsert", zone_params(zone="memo.test", records=[])))
    assert expect_ok(e.call("dns.zone.delete", {"zone": "memo.test"}))["changed"] is True
    r = expect_ok(e.call("dns.zone.upsert", zone_params(zone="memo.test", records=[])))
    assert r["changed"] is True and r["created"] is True, r
    assert expect_ok(e.call("dns.zone.delete", {"zone": "memo.test"}))["changed"] is True


@test
def hostile_records_are_refused_before_pdns_is_touched():
    e = env()
    before = e.zone_state(ZONE)
    w0, n0 = e.proxy.writes(), len(e.proxy.log)
    base = [rec("www", "A", "192.0.2.10")]
    for bad, lead in HOSTILE:
        refused(e.call_any("dns.zone.upsert", zone_params(records=base + [bad])), lead, bad)
    for params, lead in [
        (zone_params(records=base, nameservers=[]), "nameservers"),
        (zone_params(records=base, nameservers=["ns1"]), "nameservers[0]"),
        (zone_params(records=base, nameservers=["ns1.x.test", "NS1.x.test."]), "nameservers"),
        (zone_params(records=base, soa={"rname": "a b"}), "soa.rname"),
        (zone_params(records=base, soa={"ttl": 5}), "soa.ttl"),
        (zone_params(records=base, soa={"serial": 5}), None),
        (zone_params(records=base, allow_axfr_from=["192.0.2.0/33"]), "allow_axfr_from[0]"),
        (zone_params(records=base, allow_axfr_from=["any"]), "allow_axfr_from[0]"),
        (zone_params(records=base, also_notify=["192.0.2.1:0"]), "also_notify[0]"),
        (zone_params(records=base, also_notify=["192.0.2.1\n"]), "also_notify[0]"),
        (zone_params(zone="Alltypes.test", records=base), "zone"),
        (zone_params(zone="alltypes.test.", records=base), "zone"),
        (zone_params(zone="a\u0000.test", records=base), None),
        (zone_params(zone="../x", records=base), "zone"),
        (zone_params(records=[rec("h%d" % i, "A", "192.0.2.1") for i in range(MAX_RECORDS + 1)]), "records:"),
    ]:
        refused(e.call_any("dns.zone.upsert", params), lead, params)
    # Invalid UTF-8 cannot even form a request: the frame is refused.
    raw = json.dumps({"action": "dns.zone.upsert", "request_id": "u1",
                      "params": zone_params(records=[rec("a", "TXT", "XX")])}).encode().replace(b"XX", b"\xc3\x28")
    c = e.agent.client()
    try:
        c.send_raw(frame(raw))
        resp = read_frame(c.sock)
    finally:
        c.close()
    assert resp and resp.get("code") == "INVALID_JSON", resp
    assert len(e.proxy.log) == n0, "pdns was asked something: %r" % e.proxy.log[n0:]
    assert e.proxy.writes() == w0
    assert e.zone_state(ZONE) == before


@test
def metadata_converges():
    e = env()
    p = zone_params(allow_axfr_from=["192.0.2.0/24", "2001:db8::/32"])
    r = expect_ok(e.call("dns.zone.upsert", p))
    assert r["changed"] is True and r["diff"]["rrsets"] == [], r
    assert r["diff"]["metadata"] == [{"kind": "ALLOW-AXFR-FROM", "values": ["192.0.2.0/24", "2001:db8::/32"]}], r
    st = e.zone_state(ZONE)
    assert ("ALLOW-AXFR-FROM", ["192.0.2.0/24", "2001:db8::/32"]) in st["meta"], st["meta"]
    assert ("ALSO-NOTIFY", ["127.0.0.1:%d" % e.notify_port]) in st["meta"], st["meta"]
    w0 = e.proxy.writes()
    assert expect_ok(e.call("dns.zone.upsert", p))["changed"] is False
    assert e.proxy.writes() == w0
    g = expect_ok(e.call("dns.zone.get", {"zone": ZONE}))
    assert g["allow_axfr_from"] == ["192.0.2.0/24", "2001:db8::/32"] and g["kind"] == "Native", g
    r = expect_ok(e.call("dns.zone.upsert", zone_params()))
    assert r["changed"] is True and r["diff"]["metadata"] == [{"kind": "ALLOW-AXFR-FROM", "values": []}], r
    assert all(k != "ALLOW-AXFR-FROM" for k, _ in e.zone_state(ZONE)["meta"])


@test
def get_and_list():
    e = env()
    g = expect_ok(e.call("dns.zone.get", {"zone": ZONE}))
    assert g["changed"] is False and g["zone"] == ZONE and g["dnssec"] is False, g
    types = {(r["name"], r["type"]) for r in g["rrsets"]}
    assert ("www.alltypes.test.", "AAAA") in types and ("alltypes.test.", "SOA") in types, types
    expect_error(e.call("dns.zone.get", {"zone": "nothere.test"}), "NOT_FOUND")
    zones = expect_ok(e.call("dns.zone.list"))["zones"]
    assert [z["zone"] for z in zones] == [ZONE], zones
    assert isinstance(zones[0]["serial"], int), zones


@test
def api_key_file_must_be_root_only():
    e = env()
    before = e.zone_state(ZONE)
    try:
        os.chmod(e.key_file, 0o640)
        resp = expect_error(e.call("dns.zone.upsert", zone_params(records=[])), "CONFIG_INVALID")
        assert "closed to group and others" in resp["error"] and e.pdns.api_key not in resp["error"], resp
        os.chmod(e.key_file, 0o600)
        with open(e.key_file, "w") as f:
            f.write("wrong-key\n")
        resp = expect_error(e.call("dns.zone.list"), "SERVICE_FAILED")
        assert "refused the key" in resp["error"], resp
    finally:
        os.chmod(e.key_file, 0o600)
        with open(e.key_file, "w") as f:
            f.write(e.pdns.api_key + "\n")
    with open(e.agent.audit_path) as f:
        assert e.pdns.api_key not in f.read(), "the API key reached the audit log"
    assert e.pdns.api_key not in e.agent.log()
    assert e.zone_state(ZONE) == before


@test
def pdns_down_is_service_failed_and_nothing_half_applied():
    e = env()
    d = e.direct_agent()
    expect_ok(d.call("dns.zone.list"))      # the worker holds a live connection now
    before = e.zone_state(ZONE)
    e.pdns.stop_pdns()
    try:
        recs = [r for r in all_types() if r["type"] != "TXT"]
        for action, params in (("dns.zone.upsert", zone_params(records=recs)), ("dns.zone.get", {"zone": ZONE}),
                               ("dns.zone.delete", {"zone": ZONE}), ("dns.dnssec.enable", {"zone": ZONE}),
                               ("dns.cache.purge", {"zone": ZONE})):
            resp = expect_error(d.call(action, params), "SERVICE_FAILED")
            assert "PowerDNS API" in resp["error"] and "unreachable" in resp["error"], resp
    finally:
        e.pdns.start_pdns()
    assert e.zone_state(ZONE) == before
    assert expect_ok(d.call("dns.zone.upsert", zone_params()))["changed"] is False


@test
def concurrent_upserts_of_different_zones_all_land():
    e = env()
    n = 100
    results = [None] * n

    def one(i):
        z = "c%03d.test" % i
        results[i] = e.agent.call("dns.zone.upsert", zone_params(
            zone=z, records=[rec("www", "A", "192.0.2.%d" % (i % 250 + 1)), rec("@", "TXT", "zone %d" % i)]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 4)
    for i, r in enumerate(results):
        assert r is not None, "no answer for zone %d" % i
        assert expect_ok(r)["changed"] is True, r
    listed = {z["zone"] for z in expect_ok(e.call("dns.zone.list"))["zones"]}
    for i in range(n):
        z = "c%03d.test" % i
        assert z in listed, z
        assert rdata("www.%s." % z, "A") == ["192.0.2.%d" % (i % 250 + 1)], z
    for i in range(n):
        assert expect_ok(e.call("dns.zone.delete", {"zone": "c%03d.test" % i}))["changed"] is True


# ---- DNSSEC ----

def key_tag(rdata_bytes):
    acc = 0
    for i, b in enumerate(rdata_bytes):
        acc += b if i & 1 else b << 8
    acc += (acc >> 16) & 0xFFFF
    return acc & 0xFFFF


def wire_name(name):
    out = b""
    for label in name.rstrip(".").lower().split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def ds_of(zone, dnskey_text):
    """DS (SHA-256) of one DNSKEY as dig prints it: 'flags 3 alg base64...'."""
    f, p, a, key = dnskey_text.split(None, 3)
    rd = struct.pack(">HBB", int(f), int(p), int(a)) + base64.b64decode("".join(key.split()))
    digest = hashlib.sha256(wire_name(zone) + rd).hexdigest()
    return "%d %s 2 %s" % (key_tag(rd), a, digest)


def check_signed(zone, result):
    z = zone + "."
    keys = [r for _, t, r in dig(z, "DNSKEY")[1] if t == "DNSKEY"]
    assert len(keys) == 1, keys
    assert ds_of(z, keys[0]) in result["ds"], (ds_of(z, keys[0]), result["ds"])
    st, ans = dig("www." + z, "A", "+dnssec")
    assert st == "NOERROR" and any(t == "RRSIG" for _, t, _ in ans), ans
    st, ans = dig(z, "SOA", "+dnssec")
    assert any(t == "RRSIG" and r.startswith("SOA ") for _, t, r in ans), ans


@test
def dnssec_enable_signs_and_is_idempotent():
    e = env()
    z = ZONE + "."
    assert not any(t == "RRSIG" for _, t, _ in dig("www." + z, "A", "+dnssec")[1])   # cached unsigned
    r = expect_ok(e.call("dns.dnssec.enable", {"zone": ZONE}, dry_run=True))
    assert r["changed"] is True and not e.zone_state(ZONE)["dnssec"], r
    r = expect_ok(e.call("dns.dnssec.enable", {"zone": ZONE}))
    assert r["changed"] is True and r["secured"] is True, r
    assert r["keys"][0]["algorithm"] == "ECDSAP256SHA256" and r["keys"][0]["keytype"] == "csk", r
    assert all("private" not in k for k in json.dumps(r).lower().split('"')), "a private key in the answer"
    check_signed(ZONE, r)
    w0 = e.proxy.writes()
    again = expect_ok(e.call("dns.dnssec.enable", {"zone": ZONE}))
    assert again["changed"] is False and again["ds"] == r["ds"], again
    assert expect_ok(e.call("dns.dnssec.ds", {"zone": ZONE}))["ds"] == r["ds"]
    expect_error(e.call("dns.dnssec.enable", {"zone": ZONE, "algorithm": "ED25519"}), "CONFLICT")
    assert e.proxy.writes() == w0
    # Upserts of a signed zone keep it signed and answer with new signatures.
    recs = all_types() + [rec("signed-later", "A", "192.0.2.123")]
    assert expect_ok(e.call("dns.zone.upsert", zone_params(records=recs)))["changed"] is True
    st, ans = dig("signed-later." + z, "A", "+dnssec")
    assert any(t == "RRSIG" for _, t, _ in ans), ans
    assert expect_ok(e.call("dns.zone.upsert", zone_params(records=recs)))["changed"] is False


@test
def dnssec_disable_removes_signatures():
    e = env()
    z = ZONE + "."
    r = expect_ok(e.call("dns.dnssec.disable", {"zone": ZONE}))
    assert r["changed"] is True, r
    st, ans = dig("www." + z, "A", "+dnssec")
    assert st == "NOERROR" and ans and not any(t == "RRSIG" for _, t, _ in ans), ans
    assert dig(z, "DNSKEY")[1] == []
    assert expect_ok(e.call("dns.dnssec.disable", {"zone": ZONE}))["changed"] is False
    assert expect_ok(e.call("dns.dnssec.ds", {"zone": ZONE}))["ds"] == []
    expect_error(e.call("dns.dnssec.enable", {"zone": "nothere.test"}), "NOT_FOUND")


@test
def dnssec_ed25519():
    e = env()
    expect_ok(e.call("dns.zone.upsert", zone_params(zone="ed.test", records=[rec("www", "A", "192.0.2.7")])))
    r = expect_ok(e.call("dns.dnssec.enable", {"zone": "ed.test", "algorithm": "ED25519"}))
    assert r["changed"] is True and r["keys"][0]["algorithm"] == "ED25519", r
    assert all(d.split()[1] == "15" for d in r["ds"]), r["ds"]
    check_signed("ed.test", r)
    assert expect_ok(e.call("dns.zone.delete", {"zone": "ed.test"}))["changed"] is True


# ---- cache and notify ----

@test
def cache_purge_and_notify():
    e = env()
    z = ZONE + "."
    rdata("www." + z, "A")
    r = expect_ok(e.call("dns.cache.purge", {"zone": ZONE}))
    assert r["purged"] >= 1 and r["changed"] is True, r
    # The zone still notifies 127.0.0.1:notify_port (metadata_converges).
    while select.select([e.notify_sock], [], [], 0)[0]:
        e.notify_sock.recv(4096)
    r = expect_ok(e.call("dns.notify", {"zone": ZONE}))
    assert r["queued"] is True, r
    deadline = time.monotonic() + WAIT_S
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no NOTIFY arrived: %s" % e.pdns.tail("pdns.log")
        if not select.select([e.notify_sock], [], [], left)[0]:
            continue
        pkt = e.notify_sock.recv(4096)
        opcode = (pkt[2] >> 3) & 0x0F
        if opcode == 4 and wire_name(z) in pkt[12:].lower():
            break
    expect_error(e.call("dns.notify", {"zone": "nothere.test"}), "NOT_FOUND")


# ---- delete ----

@test
def delete_stops_serving():
    e = env()
    z = ZONE + "."
    assert dig(z, "SOA")[0] == "NOERROR"
    r = expect_ok(e.call("dns.zone.delete", {"zone": ZONE}))
    assert r["changed"] is True, r
    assert dig(z, "SOA")[0] == "REFUSED"
    assert dig("www." + z, "A")[0] == "REFUSED"
    w0 = e.proxy.writes()
    r = expect_ok(e.call("dns.zone.delete", {"zone": ZONE}, dry_run=True))
    assert r["changed"] is False, r
    assert e.proxy.writes() == w0
    r = expect_ok(e.call("dns.zone.delete", {"zone": ZONE}))
    assert r["changed"] is False, r
    expect_error(e.call("dns.zone.get", {"zone": ZONE}), "NOT_FOUND")
    assert expect_ok(e.call("dns.zone.list"))["zones"] == []


def main():
    gone = dnsenv.missing()
    agenttest.suite("dns module", "root and %s (Debian packages pdns-server pdns-backend-mysql mariadb-server "
                    "bind9-dnsutils)" % (", ".join(gone) or "nothing else"), not gone, lambda: ENV)


if __name__ == "__main__":
    main()
