"""A FAKE Stalwart: not Stalwart, a stand-in for the tests of the mail
module's stalwart backend.

Stalwart is not packaged for Debian and cannot run on the test machines
(research: subsystems-mail-security-system.md §1, "CANNOT RUN HERE: fake
the HTTP API"). This fake implements exactly the subset of Stalwart
v0.16's management API the module uses, with the wire types and error
shapes the research documents; nothing else. Each behaviour names its
source ([R §1.1] = the research note, section 1.1, which cites
stalwartlabs/stalwart@v0.16.14 and the panel's client; [RFC 8620] /
[RFC 9661] for plain JMAP).

- POST /jmap with HTTP Basic admin:<token>; wrong or missing credentials
  get 401 [R §1.1 "URL and auth"]; a Content-Type other than
  application/json gets 400 notJSON [R §1.1, crates/http/src/request.rs].
- Envelope {"using","methodCalls":[[M,ARGS,ID]]} answered with
  {"methodResponses":[[M,RESULT,ID]],"sessionState"} [R §1.1 "Envelope"].
- Method-level errors: HTTP 200 with ["error",{"type","description"},ID]
  (unknownMethod, unsupportedFilter, invalidArguments, serverUnavailable...)
  [R §1.1 "Errors", crates/jmap-proto/src/error/method.rs].
- Per-object errors in notCreated/notUpdated/notDestroyed: a duplicate is
  primaryKeyViolation, a missing object notFound, a domain still in use
  objectIsLinked, a bad field validationFailed, destroying the active
  Sieve script scriptIsActive [R §1.1, crates/jmap-proto/src/error/set.rs,
  crates/jmap/src/registry/set.rs].
- Wire types: set-typed properties and object lists are JSON objects
  (keyed by index), never arrays: an array is validationFailed ("Invalid
  value for object property"); variants carry "@type"; updates take RFC
  8620 patch paths such as "quotas/maxDiskQuota" [R §1.1 "Wire types"].
- x:Domain/query {filter:{name}}; x:Domain/set create/update/destroy;
  x:Domain/get; catchAllAddress [R §1.1 table, "Lists: ... Catch-all"].
- x:Account/query {filter:{name,domainId}}, filter emailAddress is
  unsupportedFilter, position/limit/total [R §1.1 table, "Pagination"];
  x:Account/get masks credentials, usedDiskQuota server-set
  [R §1.1 "Other x:UserAccount fields"]; x:Account/set.
- x:Action/set create {"@type":"InvalidateCaches"}: what
  `stalwart-cli create Action/InvalidateCaches` sends
  [research jabali-go-agent.md §4.7].
- SieveScript/get {accountId} → list[{id,name,isActive,blobId}];
  SieveScript/set create/update with onSuccessActivateScript; isActive:false
  deactivates; blob upload POST /jmap/upload/{accountId} (Content-Type
  application/sieve) → {blobId} [R §1.1 "Forwarders and autoresponder"];
  blob download GET /jmap/download/{accountId}/{blobId}/{name}
  [RFC 8620 §6.2].

Every request is recorded (method, path, body: parsed JSON or text; never
the Authorization header) for comparison with golden files, and a test can
make the next call of a method fail with a chosen error shape.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeStalwart:
    def __init__(self, token):
        self.token = token
        self.lock = threading.Lock()
        self.requests = []
        self.fail = {}          # method -> ("method"|"set", type, description)
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/jmap" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.domains = {}
            self.accounts = {}
            self.scripts = {}       # accountId -> {id: {...}}
            self.blobs = {}
            self.caches_invalidated = 0
            self.next_id = 0

    def new_id(self, prefix):
        self.next_id += 1
        return "%s%d" % (prefix, self.next_id)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def take_requests(self):
        with self.lock:
            out, self.requests = self.requests, []
        return out

    # ---- methods ----

    def call(self, method, args):
        injected = self.fail.pop(method, None)
        if injected and injected[0] == "method":
            return "error", {"type": injected[1], "description": injected[2]}
        fn = METHODS.get(method)
        if fn is None:
            return "error", {"type": "unknownMethod", "description": "Unknown method " + method}
        if injected:
            # A SetError for the first object of the call; nothing changes.
            result = {}
            for member, kind in (("create", "notCreated"), ("update", "notUpdated"), ("destroy", "notDestroyed")):
                objs = args.get(member)
                if objs:
                    key = next(iter(objs)) if isinstance(objs, dict) else objs[0]
                    result[kind] = {key: {"type": injected[1], "description": injected[2]}}
                    break
            return method, result
        try:
            result = fn(self, args)
        except ArgumentError as e:
            return "error", {"type": "invalidArguments", "description": str(e)}
        except FilterError as e:
            return "error", {"type": "unsupportedFilter", "description": str(e)}
        return method, result


class ArgumentError(Exception):
    pass


class FilterError(Exception):
    pass


def set_error(t, desc=None):
    e = {"type": t}
    if desc:
        e["description"] = desc
    return e


def objects_only(value, where):
    """Set-typed properties and object lists are objects, never arrays."""
    if isinstance(value, list):
        return set_error("validationFailed", "Invalid value for object property %s" % where)
    if isinstance(value, dict):
        for k, v in value.items():
            e = objects_only(v, where + "/" + k)
            if e:
                return e
    return None


def apply_patch(obj, patch):
    for path, value in patch.items():
        parts = path.split("/")
        target = obj
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        if value is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value


def project(obj, props, masked=()):
    out = {"id": obj["id"]}
    for p in props or obj.keys():
        if p in obj:
            out[p] = obj[p]
    for m in masked:
        if m in out:
            out[m] = {k: dict(v, secret="********") for k, v in out[m].items()}
    return out


def domain_query(fake, args):
    f = args.get("filter") or {}
    ids = [d["id"] for d in fake.domains.values() if "name" not in f or d["name"] == f["name"]]
    return {"ids": ids[:args.get("limit", len(ids))], "position": 0, "total": len(ids)}


def domain_get(fake, args):
    ids = args.get("ids")
    if ids is None:
        ids = list(fake.domains)
    return {"list": [project(fake.domains[i], args.get("properties")) for i in ids if i in fake.domains],
            "notFound": [i for i in ids if i not in fake.domains]}


def domain_set(fake, args):
    res = {}
    for cid, d in (args.get("create") or {}).items():
        if not isinstance(d.get("name"), str) or not d["name"]:
            res.setdefault("notCreated", {})[cid] = set_error("validationFailed", "name is required")
        elif any(x["name"] == d["name"] for x in fake.domains.values()):
            res.setdefault("notCreated", {})[cid] = set_error("primaryKeyViolation", "domain exists")
        elif objects_only(d, "") is not None:
            res.setdefault("notCreated", {})[cid] = objects_only(d, "")
        else:
            i = fake.new_id("d")
            fake.domains[i] = dict(d, id=i)
            res.setdefault("created", {})[cid] = {"id": i}
    for i, patch in (args.get("update") or {}).items():
        if i not in fake.domains:
            res.setdefault("notUpdated", {})[i] = set_error("notFound")
        else:
            apply_patch(fake.domains[i], patch)
            res.setdefault("updated", {})[i] = None
    for i in args.get("destroy") or []:
        if i not in fake.domains:
            res.setdefault("notDestroyed", {})[i] = set_error("notFound")
        elif any(a["domainId"] == i for a in fake.accounts.values()):
            res.setdefault("notDestroyed", {})[i] = set_error("objectIsLinked", "domain has accounts")
        else:
            del fake.domains[i]
            res.setdefault("destroyed", []).append(i)
    return res


def account_query(fake, args):
    f = args.get("filter") or {}
    for k in f:
        if k not in ("text", "name", "domainId", "memberTenantId", "memberGroupIds"):
            raise FilterError("unsupported filter %s" % k)
    ids = [a["id"] for a in fake.accounts.values()
           if all(a.get(k) == v for k, v in f.items())]
    pos = args.get("position", 0)
    limit = args.get("limit", len(ids))
    return {"ids": ids[pos:pos + limit], "position": pos, "total": len(ids)}


def account_get(fake, args):
    ids = args.get("ids")
    if ids is None:
        ids = list(fake.accounts)
    return {"list": [project(fake.accounts[i], args.get("properties"), masked=("credentials",))
                     for i in ids if i in fake.accounts],
            "notFound": [i for i in ids if i not in fake.accounts]}


def account_set(fake, args):
    res = {}
    for cid, a in (args.get("create") or {}).items():
        bad = objects_only(a, "")
        if bad:
            res.setdefault("notCreated", {})[cid] = bad
        elif a.get("@type") != "User" or a.get("domainId") not in fake.domains:
            res.setdefault("notCreated", {})[cid] = set_error("validationFailed", "domainId or @type invalid")
        elif any(x["name"] == a.get("name") and x["domainId"] == a["domainId"] for x in fake.accounts.values()):
            res.setdefault("notCreated", {})[cid] = set_error("primaryKeyViolation", "account exists")
        else:
            i = fake.new_id("a")
            fake.accounts[i] = dict(a, id=i, usedDiskQuota=0)
            res.setdefault("created", {})[cid] = {"id": i}
    for i, patch in (args.get("update") or {}).items():
        bad = objects_only(patch, "")
        if i not in fake.accounts:
            res.setdefault("notUpdated", {})[i] = set_error("notFound")
        elif bad:
            res.setdefault("notUpdated", {})[i] = bad
        else:
            apply_patch(fake.accounts[i], patch)
            res.setdefault("updated", {})[i] = None
    for i in args.get("destroy") or []:
        if i not in fake.accounts:
            res.setdefault("notDestroyed", {})[i] = set_error("notFound")
        else:
            del fake.accounts[i]
            fake.scripts.pop(i, None)
            res.setdefault("destroyed", []).append(i)
    return res


def action_set(fake, args):
    res = {}
    for cid, a in (args.get("create") or {}).items():
        if a.get("@type") != "InvalidateCaches":
            res.setdefault("notCreated", {})[cid] = set_error("validationFailed", "unknown action")
        else:
            fake.caches_invalidated += 1
            res.setdefault("created", {})[cid] = {"id": fake.new_id("x")}
    return res


def need_account(fake, args):
    a = args.get("accountId")
    if a not in fake.accounts:
        raise ArgumentError("accountId %r not found" % a)
    return fake.scripts.setdefault(a, {})


def sieve_get(fake, args):
    scripts = need_account(fake, args)
    return {"accountId": args["accountId"], "list": [dict(s) for s in scripts.values()], "notFound": []}


def sieve_set(fake, args):
    scripts = need_account(fake, args)
    res = {}
    created = {}
    for cid, s in (args.get("create") or {}).items():
        if s.get("blobId") not in fake.blobs or not s.get("name"):
            res.setdefault("notCreated", {})[cid] = set_error("validationFailed", "blobId or name")
        elif any(x["name"] == s["name"] for x in scripts.values()):
            res.setdefault("notCreated", {})[cid] = set_error("primaryKeyViolation", "script name exists")
        else:
            i = fake.new_id("s")
            scripts[i] = {"id": i, "name": s["name"], "blobId": s["blobId"], "isActive": False}
            created["#" + cid] = i
            res.setdefault("created", {})[cid] = {"id": i}
    for i, patch in (args.get("update") or {}).items():
        if i not in scripts:
            res.setdefault("notUpdated", {})[i] = set_error("notFound")
        else:
            scripts[i].update(patch)
            res.setdefault("updated", {})[i] = None
    for i in args.get("destroy") or []:
        if i not in scripts:
            res.setdefault("notDestroyed", {})[i] = set_error("notFound")
        elif scripts[i]["isActive"]:
            res.setdefault("notDestroyed", {})[i] = set_error("scriptIsActive", "deactivate it first")
        else:
            del scripts[i]
            res.setdefault("destroyed", []).append(i)
    act = args.get("onSuccessActivateScript")
    if act:
        act = created.get(act, act)
        if act in scripts:
            for s in scripts.values():
                s["isActive"] = s["id"] == act
    return res


METHODS = {
    "x:Domain/query": domain_query, "x:Domain/get": domain_get, "x:Domain/set": domain_set,
    "x:Account/query": account_query, "x:Account/get": account_get, "x:Account/set": account_set,
    "x:Action/set": action_set, "SieveScript/get": sieve_get, "SieveScript/set": sieve_set,
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if code == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Stalwart Server"')
        self.end_headers()
        self.wfile.write(data)

    def authorised(self):
        fake = self.server.fake
        want = "Basic " + base64.b64encode(("admin:" + fake.token).encode()).decode()
        if self.headers.get("Authorization") != want:
            self.send(401, {"type": "about:blank", "title": "Unauthorized", "status": 401,
                            "detail": "You have to authenticate first."}, "application/problem+json")
            return False
        return True

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def record(self, method, body):
        fake = self.server.fake
        with fake.lock:
            fake.requests.append({"method": method, "path": self.path,
                                  "content_type": self.headers.get("Content-Type"), "body": body})

    def do_GET(self):
        fake = self.server.fake
        if not self.authorised():
            return
        parts = self.path.split("/")
        # /jmap/download/{accountId}/{blobId}/{name}
        if len(parts) == 6 and parts[1] == "jmap" and parts[2] == "download":
            self.record("GET", None)
            with fake.lock:
                blob = fake.blobs.get(parts[4])
            if blob is None:
                self.send(404, {"type": "about:blank", "status": 404, "title": "Not Found"})
            else:
                self.send(200, blob, "application/octet-stream")
            return
        self.send(404, {"type": "about:blank", "status": 404, "title": "Not Found"})

    def do_POST(self):
        fake = self.server.fake
        data = self.body()
        if not self.authorised():
            return
        parts = self.path.split("/")
        if len(parts) == 4 and parts[1] == "jmap" and parts[2] == "upload":
            self.record("POST", data.decode(errors="replace"))
            with fake.lock:
                if parts[3] not in fake.accounts:
                    self.send(404, {"type": "about:blank", "status": 404, "title": "Not Found"})
                    return
                blob = "b%d" % (len(fake.blobs) + 1)
                fake.blobs[blob] = data
            self.send(200, {"accountId": parts[3], "blobId": blob, "type": self.headers.get("Content-Type"),
                            "size": len(data)})
            return
        if self.path != "/jmap":
            self.send(404, {"type": "about:blank", "status": 404, "title": "Not Found"})
            return
        if self.headers.get("Content-Type") != "application/json":
            self.record("POST", data.decode(errors="replace"))
            self.send(400, {"type": "urn:ietf:params:jmap:error:notJSON", "status": 400,
                            "detail": "Content-Type must be application/json"}, "application/problem+json")
            return
        try:
            req = json.loads(data)
        except ValueError:
            self.record("POST", data.decode(errors="replace"))
            self.send(400, {"type": "urn:ietf:params:jmap:error:notJSON", "status": 400}, "application/problem+json")
            return
        self.record("POST", req)
        out = []
        with fake.lock:
            for name, args, cid in req.get("methodCalls", []):
                m, res = fake.call(name, args)
                out.append([m, res, cid])
        self.send(200, {"methodResponses": out, "sessionState": "fake-0"})
