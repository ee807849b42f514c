#!/usr/bin/env python3
"""The mail module's stalwart backend against a FAKE Stalwart.

Stalwart cannot run here (not packaged for Debian), so the agent talks to
tests/fakes/stalwart.py, a fake that implements the documented subset of
Stalwart v0.16's JMAP management API (its docstring cites the research
for every behaviour). What is checked:

- each action sends exactly the documented calls: the requests the fake
  received are compared with tests/golden/mail-stalwart/<case>.json
  (regenerate with JABALI_UPDATE_GOLDEN=1 after reviewing a change);
- a repeat sends no set call and no upload;
- every error shape maps to a stable agent code, with Stalwart's
  description in the message;
- invalid input is refused before any request is sent.
"""

import json
import os
import shutil
import socket
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))
import agenttest  # noqa: E402
from agenttest import BUILDDIR, GOLDEN, Agent, expect_error, expect_ok, test  # noqa: E402
from stalwart import FakeStalwart  # noqa: E402

DOMAIN = "example.test"
TOKEN = "t0ken-for-the-fake"
HASH1 = "$6$Fp/0oAtBfe9Z1gtD$pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0"
HASH2 = "$2y$05$l7MrfrfMbfDR9k2MteIv8e.X6M1rD341P7NQk/SNT6I2/jevvj1.S"
GOLDEN_DIR = os.path.join(GOLDEN, "mail-stalwart")


def module_so():
    p = os.path.join(BUILDDIR, "modules", "mail", ".libs", "mail.so")
    return p if os.path.exists(p) else os.environ.get("JABALI_MAIL_SO", p)


class Env:
    def __init__(self):
        self.agent = None
        self.fake = None
        self.t = tempfile.mkdtemp(prefix="jabali-stalwart-")
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def setup(self):
        os.chmod(self.t, 0o755)
        mods = os.path.join(self.t, "mods")
        os.makedirs(mods)
        shutil.copy(module_so(), os.path.join(mods, "mail.so"))
        os.chmod(os.path.join(mods, "mail.so"), 0o644)
        self.fake = FakeStalwart(TOKEN)
        self.token_file = os.path.join(self.t, "stalwart-admin.token")
        self.write_token(TOKEN)
        self.settings = {"backend": "stalwart", "stalwart_url": self.fake.url,
                         "stalwart_token_file": self.token_file, "stalwart_timeout_ms": 5000}
        self.agent = Agent(modules={"dir": mods, "test": None, "mail": {"enabled": True, "settings": self.settings}})

    def write_token(self, token, mode=0o600):
        with open(self.token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(self.token_file, mode)

    def call(self, action, params=None, **extra):
        return self.agent.call(action, params, **extra)

    def exchange(self, case, action, params, **extra):
        """Calls the action and compares what the fake received with the
        golden file of the case; returns the answer."""
        self.fake.take_requests()
        resp = self.call(action, params, **extra)
        got = self.fake.take_requests()
        path = os.path.join(GOLDEN_DIR, case + ".json")
        text = json.dumps(got, indent=2, sort_keys=True) + "\n"
        if os.environ.get("JABALI_UPDATE_GOLDEN"):
            os.makedirs(GOLDEN_DIR, exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        with open(path) as f:
            want = f.read()
        assert text == want, "%s sent other requests than %s:\n%s" % (action, path, text)
        return resp, got

    def close(self):
        try:
            if self.agent:
                self.agent.close()
        finally:
            if self.fake:
                self.fake.close()
            shutil.rmtree(self.t, ignore_errors=True)


ENV = None


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


def set_calls(requests):
    """Requests that change something: set calls and uploads."""
    out = []
    for r in requests:
        if r["path"] != "/jmap":
            if r["method"] == "POST":
                out.append(r["path"])
            continue
        out += [c[0] for c in r["body"]["methodCalls"] if c[0].endswith("/set")]
    return out


def converge(e, case, action, params):
    """First run: the golden calls, changed:true; repeat: its own golden
    calls, changed:false, no set call; a dry run: no set call either."""
    resp, got = e.exchange(case, action, params)
    r = expect_ok(resp)
    assert r["changed"] is True, r
    assert set_calls(got), "%s changed something without a set call" % case
    resp, got = e.exchange(case + "-repeat", action, params)
    r = expect_ok(resp)
    assert r["changed"] is False, r
    assert set_calls(got) == [], "a repeat of %s sent %s" % (case, set_calls(got))
    e.fake.take_requests()
    r = expect_ok(e.call(action, params, dry_run=True))
    assert r["changed"] is False and set_calls(e.fake.take_requests()) == []
    return r


# ---- cases ----

@test
def domain_and_mailbox():
    e = env()
    e.fake.take_requests()
    r = expect_ok(e.call("mail.domain.upsert", {"domain": DOMAIN}, dry_run=True))
    assert r["changed"] is True and set_calls(e.fake.take_requests()) == []
    converge(e, "domain-upsert", "mail.domain.upsert", {"domain": DOMAIN})
    mb = {"domain": DOMAIN, "local_part": "alice", "password_hash": HASH1, "quota_mib": 100}
    converge(e, "mailbox-create", "mail.mailbox.create", mb)
    a = next(iter(e.fake.accounts.values()))
    assert a["name"] == "alice" and a["quotas"] == {"maxDiskQuota": 100 << 20}, a
    assert a["credentials"] == {"0": {"@type": "Password", "secret": HASH1}}, a
    assert e.fake.caches_invalidated == 1
    converge(e, "mailbox-passwd", "mail.mailbox.passwd", {"domain": DOMAIN, "local_part": "alice",
                                                           "password_hash": HASH2})
    assert a["credentials"]["0"]["secret"] == HASH2 and e.fake.caches_invalidated == 2
    converge(e, "mailbox-set-quota", "mail.mailbox.set_quota", {"domain": DOMAIN, "local_part": "alice",
                                                                 "quota_mib": 5})
    assert a["quotas"]["maxDiskQuota"] == 5 << 20
    resp, _ = e.exchange("mailbox-get", "mail.mailbox.get", {"domain": DOMAIN, "local_part": "alice"})
    r = expect_ok(resp)
    assert r["address"] == "alice@" + DOMAIN and r["quota_mib"] == 5, r
    a["usedDiskQuota"] = 12345
    resp, _ = e.exchange("mailbox-usage", "mail.mailbox.usage", {"domain": DOMAIN, "local_part": "alice"})
    assert expect_ok(resp)["used_bytes"] == 12345
    resp, _ = e.exchange("mailbox-list", "mail.mailbox.list", {"domain": DOMAIN})
    assert [m["address"] for m in expect_ok(resp)["mailboxes"]] == ["alice@" + DOMAIN]
    audit = open(e.agent.audit_path).read() + e.agent.log()
    assert HASH1 not in audit and HASH2 not in audit, "a password hash reached the audit or the log"


@test
def forwarder_autoresponder_catchall():
    e = env()
    fw = {"address": "alice@" + DOMAIN, "aliases": ["sales"],
          "externals": [{"target": "out@remote.test", "keep_copy": True}]}
    converge(e, "forwarder-upsert", "mail.forwarder.upsert", fw)
    a = next(iter(e.fake.accounts.values()))
    assert a["aliases"] == {"0": {"name": "sales", "domainId": a["domainId"], "enabled": True}}, a
    scripts = list(e.fake.scripts[a["id"]].values())
    assert len(scripts) == 1 and scripts[0]["name"] == "jabali-managed" and scripts[0]["isActive"], scripts
    text = e.fake.blobs[scripts[0]["blobId"]].decode()
    assert 'redirect :copy "out@remote.test";' in text, text
    ar = {"address": "alice@" + DOMAIN, "subject": 'Away "now"', "body": "Back\nsoon \\o/", "interval_days": 2}
    converge(e, "autoresponder-upsert", "mail.autoresponder.upsert", ar)
    text = e.fake.blobs[list(e.fake.scripts[a["id"]].values())[0]["blobId"]].decode()
    assert ':subject "Away \\"now\\"" "Back\nsoon \\\\o/";' in text and "redirect :copy" in text, text
    assert ':addresses ["alice@example.test", "sales@example.test"]' in text, text
    converge(e, "catchall-set", "mail.catchall.set", {"domain": DOMAIN, "target": "alice@" + DOMAIN})
    converge(e, "catchall-clear", "mail.catchall.set", {"domain": DOMAIN})
    converge(e, "autoresponder-delete", "mail.autoresponder.delete", {"address": "alice@" + DOMAIN})
    converge(e, "forwarder-delete", "mail.forwarder.delete", {"address": "alice@" + DOMAIN})
    assert e.fake.scripts[a["id"]] == {} and a["aliases"] == {}, (e.fake.scripts, a)


@test
def user_script_is_never_replaced():
    e = env()
    a = next(iter(e.fake.accounts.values()))
    e.fake.blobs["mine"] = b"keep;\n"
    e.fake.scripts[a["id"]]["u1"] = {"id": "u1", "name": "mine", "blobId": "mine", "isActive": True}
    try:
        e.fake.take_requests()
        expect_error(e.call("mail.autoresponder.upsert", {"address": "alice@" + DOMAIN, "subject": "s",
                                                          "body": "b"}), "CONFLICT")
        assert set_calls(e.fake.take_requests()) == []
    finally:
        del e.fake.scripts[a["id"]]["u1"]


@test
def invalid_input_sends_nothing():
    e = env()
    e.fake.take_requests()
    for params in ({"domain": DOMAIN, "local_part": "bob", "password_hash": "plaintext"},
                   {"domain": DOMAIN, "local_part": "Bob", "password_hash": HASH1},
                   {"domain": DOMAIN, "local_part": "b/ob", "password_hash": HASH1},
                   {"domain": DOMAIN, "local_part": "-bob", "password_hash": HASH1}):
        expect_error(e.call("mail.mailbox.create", params), "INVALID_PARAMS")
    assert e.fake.take_requests() == [], "a refused request reached Stalwart"
    resp, got = e.exchange("mailbox-create-unknown-domain", "mail.mailbox.create",
                           {"domain": "nowhere.test", "local_part": "bob", "password_hash": HASH1})
    expect_error(resp, "NOT_FOUND")
    assert set_calls(got) == []


@test
def error_shapes_map_to_stable_codes():
    e = env()
    cases = [
        # (method, kind, type, action, params, code)
        ("x:Domain/set", "set", "primaryKeyViolation", "mail.domain.upsert", {"domain": "b.test"}, "ALREADY_EXISTS"),
        ("x:Account/set", "set", "notFound", "mail.mailbox.set_quota",
         {"domain": DOMAIN, "local_part": "alice", "quota_mib": 7}, "NOT_FOUND"),
        ("x:Account/set", "set", "validationFailed", "mail.mailbox.create",
         {"domain": DOMAIN, "local_part": "bob", "password_hash": HASH1}, "BACKEND_REJECTED"),
        ("x:Domain/set", "set", "objectIsLinked", "mail.domain.delete", {"domain": "c.test"}, "CONFLICT"),
        ("SieveScript/set", "set", "scriptIsActive", "mail.forwarder.upsert",
         {"address": "alice@" + DOMAIN, "externals": [{"target": "x@remote.test"}]}, "CONFLICT"),
        ("x:Account/query", "method", "invalidArguments", "mail.mailbox.get",
         {"domain": DOMAIN, "local_part": "alice"}, "BACKEND_REJECTED"),
        ("x:Domain/query", "method", "unknownMethod", "mail.domain.upsert", {"domain": "d.test"}, "BACKEND_REJECTED"),
        ("x:Domain/query", "method", "forbidden", "mail.domain.upsert", {"domain": "d.test"}, "BACKEND_AUTH"),
        ("x:Domain/query", "method", "serverUnavailable", "mail.domain.upsert", {"domain": "d.test"},
         "SERVICE_FAILED"),
    ]
    expect_ok(e.call("mail.domain.upsert", {"domain": "c.test"}))
    for method, kind, typ, action, params, code in cases:
        desc = "described by the fake: %s" % typ
        e.fake.fail[method] = (kind, typ, desc)
        r = expect_error(e.call(action, params), code)
        assert typ in r["error"] and desc in r["error"], r
        assert method not in e.fake.fail, "%s was never called" % method
    # The unsupportedFilter the real server answers for emailAddress.
    assert e.fake.call("x:Account/query", {"filter": {"emailAddress": "a@b"}})[1]["type"] == "unsupportedFilter"


@test
def credentials_and_reachability():
    e = env()
    try:
        e.write_token("wrong-token")
        r = expect_error(e.call("mail.domain.upsert", {"domain": DOMAIN}), "BACKEND_AUTH")
        assert "401" in r["error"], r
        e.write_token(TOKEN, mode=0o644)
        r = expect_error(e.call("mail.domain.upsert", {"domain": DOMAIN}), "BACKEND_AUTH")
        assert "root only" in r["error"], r
        e.fake.take_requests()
    finally:
        e.write_token(TOKEN)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    with Agent(modules={"dir": os.path.dirname(e.agent.cfg["modules"]["dir"] + "/"), "test": None,
                        "mail": {"enabled": True, "settings": dict(
                            e.settings, stalwart_url="http://127.0.0.1:%d/jmap" % closed)}}) as other:
        r = expect_error(other.call("mail.domain.upsert", {"domain": DOMAIN}), "SERVICE_FAILED")
        assert "cannot reach Stalwart" in r["error"], r


@test
def deletes():
    e = env()
    r = expect_error(e.call("mail.mailbox.delete", {"domain": DOMAIN, "local_part": "alice"}), "CONFLICT")
    assert "purge" in r["error"], r
    r = expect_error(e.call("mail.domain.delete", {"domain": DOMAIN}), "CONFLICT")
    assert "1 mailbox" in r["error"], r
    converge(e, "mailbox-delete", "mail.mailbox.delete", {"domain": DOMAIN, "local_part": "alice", "purge": True})
    converge(e, "domain-delete", "mail.domain.delete", {"domain": DOMAIN})
    assert not any(d["name"] == DOMAIN for d in e.fake.domains.values())


def main():
    agenttest.suite("mail module (stalwart)", "root (the token file must be root's)", env=lambda: ENV)


if __name__ == "__main__":
    main()
