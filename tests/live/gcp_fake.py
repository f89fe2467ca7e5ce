#!/usr/bin/env python3
"""A stateful fake of the Compute Engine v1 firewall API (and of Cloud Resource Manager's
projects.testIamPermissions), for tests/live_gcp.rs.

No emulator of GCE firewalls exists that the Rust SDK can use, so this one implements the
calls intentwall makes, with the behaviour the tests depend on:

- firewalls list (filter on `network`/`name`, pages with `nextPageToken`), get, insert,
  patch (JSON merge), update (PUT, every field replaced), delete; networks get;
  globalOperations get;
- every request body is validated against the schema subset in gcp_compute_firewalls.json
  (types, enums, patterns, unknown fields) and against the rules the API states in prose
  (priority 0-65535, allowed XOR denied, ports only for tcp/udp/sctp, valid CIDRs, EGRESS
  without source tags or service accounts, service accounts not mixed with tags, ...);
- writes answer an Operation (uint64 id as a decimal string, as the SDK requires) that is
  RUNNING for `--op-polls` polls (or `--settle-ms` milliseconds, whichever comes first) and
  then DONE; the change takes effect when the operation is DONE;
- errors are Google's `{"error": {"code", "message", "errors": [{"reason", ...}]}}`;
- faults: 429 every Nth request or in a storm, 503 after N mutations (optionally in one
  project), slow mutations, operations pending longer, a concurrent edit after a listing.
- Cloud Resource Manager v3 `POST /v3/projects/{p}:testIamPermissions` on the same port:
  the body is validated against the discovery subset in gcp_crm_test_iam_permissions.json
  and the rules the API states (a list of permission names, no wildcards); the answer is
  the granted subset (`{}` when none is), everything by default, less what `--withhold`
  names; a project the fake does not hold is 403, and `--iam-fail CODE` fails every call.
  Errors there are the One Platform shape `{"error": {"code", "message", "status",
  "details"}}`. These calls are read-only: counted under `methods` and in `iam` (what was
  asked), never as mutating.

Mutating requests that reach the store are counted (`GET /__counts`), independently of
intentwall's own report; with `--delay-mutations`, `most_in_flight` is the most mutations that
were in their delay at once (writers working side by side). `/__admin/...` sets state up and edits it "by hand"; those requests
are neither counted nor subject to faults.

Prints its port on the first line of stdout, then serves until killed.
"""

import argparse
import base64
import ipaddress
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "https://www.googleapis.com/compute/v1/"
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "gcp_compute_firewalls.json"), encoding="utf-8") as f:
    DISCOVERY = json.load(f)
SCHEMAS = DISCOVERY["schemas"]
with open(os.path.join(HERE, "gcp_crm_test_iam_permissions.json"), encoding="utf-8") as f:
    CRM = json.load(f)
CRM_SCHEMAS = CRM["schemas"]
# what the discovery document says the path is: v3/{+resource}:testIamPermissions with
# resource ^projects/[^/]+$
CRM_PATH = re.compile(r"/v3/(projects/[^/:]+):testIamPermissions")
# IAM permission names are service.resource.verb (e.g. compute.firewalls.create)
PERMISSION = re.compile(r"[a-z][a-z0-9]*\.[a-zA-Z][a-zA-Z0-9]*\.[a-zA-Z][a-zA-Z0-9]*")
MAX_PERMISSIONS = 100

NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
PROTOCOLS = {"tcp", "udp", "icmp", "esp", "ah", "ipip", "sctp", "all"}
WITH_PORTS = {"tcp", "udp", "sctp", "6", "17", "132"}
EMAIL = re.compile(r"[a-z0-9][-a-z0-9._]*@[a-z0-9][-a-z0-9.]*\.[a-z]{2,}")


class ApiError(Exception):
    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def body(self):
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            }
        }


def invalid(message):
    return ApiError(400, "invalid", message)


class RpcError(ApiError):
    """An error of a One Platform API (Cloud Resource Manager): `status` is the canonical
    code's name, and `details` typed messages (google.rpc.BadRequest, ErrorInfo)."""

    STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
              404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
              503: "UNAVAILABLE"}

    def __init__(self, code, message, details=None):
        super().__init__(code, self.STATUS.get(code, "UNKNOWN"), message)
        self.details = details or []

    def body(self):
        out = {"code": self.code, "message": self.message, "status": self.reason}
        if self.details:
            out["details"] = self.details
        return {"error": out}


def bad_request(field, description):
    return RpcError(400, description, [{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": field, "description": description}],
    }])


# ---------------------------------------------------------------- schema validation


def check_schema(value, schema, path):
    """Validate `value` against a discovery schema; raise ApiError(400) on the first error."""
    if "$ref" in schema:
        return check_schema(value, SCHEMAS[schema["$ref"]], path)
    t = schema.get("type")
    if t == "object":
        if not isinstance(value, dict):
            raise invalid(f"Invalid value at '{path}': expected an object")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                check_schema(v, props[k], f"{path}.{k}" if path else k)
            elif extra is not None:
                check_schema(v, extra, f"{path}.{k}")
            else:
                raise invalid(f"Invalid JSON payload received. Unknown name \"{k}\" at '{path}': Cannot find field.")
    elif t == "array":
        if not isinstance(value, list):
            raise invalid(f"Invalid value at '{path}': expected a list")
        for i, v in enumerate(value):
            check_schema(v, schema.get("items", {}), f"{path}[{i}]")
    elif t == "string":
        if not isinstance(value, str):
            raise invalid(f"Invalid value at '{path}' ({type(value).__name__}): expected a string")
        if "enum" in schema and value not in schema["enum"]:
            raise invalid(f"Invalid value at '{path}' ({value!r}): not one of {schema['enum']}")
        fmt = schema.get("format")
        if fmt in ("uint64", "int64") and not re.fullmatch(r"-?\d+", value):
            raise invalid(f"Invalid value at '{path}' ({value!r}): not a {fmt}")
    elif t == "integer":
        # proto3 JSON: int32 as a number (a decimal string is accepted too)
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value))
        ):
            raise invalid(f"Invalid value at '{path}' ({value!r}): expected an integer")
        n = int(value)
        if schema.get("format") == "int32" and not -(2**31) <= n < 2**31:
            raise invalid(f"Invalid value at '{path}' ({value!r}): out of int32 range")
    elif t == "boolean":
        if not isinstance(value, bool):
            raise invalid(f"Invalid value at '{path}' ({value!r}): expected true or false")


def check_request_schema(body):
    """A testIamPermissions request body against the discovery schema: an object whose only
    field is `permissions`, a list of strings. Raise RpcError(400) on the first violation."""
    if not isinstance(body, dict):
        raise bad_request("", "Invalid JSON payload received. Expected an object.")
    props = CRM_SCHEMAS["TestIamPermissionsRequest"]["properties"]
    for k in body:
        if k not in props:
            raise bad_request(k, f"Invalid JSON payload received. Unknown name \"{k}\": Cannot find field.")
    perms = body.get("permissions")
    if perms is not None and not isinstance(perms, list):
        raise bad_request("permissions", f"Invalid value at 'permissions' ({type(perms).__name__}): expected a list of strings")
    for i, p in enumerate(perms or []):
        if not isinstance(p, str):
            raise bad_request(f"permissions[{i}]", f"Invalid value at 'permissions[{i}]' ({type(p).__name__}): expected a string")


def check_request(body):
    """The rules of testIamPermissions beyond the schema: at least one permission, at most
    MAX_PERMISSIONS, each a permission name without wildcards. Raise RpcError(400)."""
    perms = body.get("permissions") or []
    if not perms:
        raise bad_request("permissions", "No permissions were specified in the request.")
    if len(perms) > MAX_PERMISSIONS:
        raise bad_request("permissions", f"The number of permissions in the request ({len(perms)}) exceeds the maximum of {MAX_PERMISSIONS}.")
    for p in perms:
        if "*" in p:
            raise bad_request("permissions", f"Permissions with wildcards are not allowed: '{p}'.")
        if not PERMISSION.fullmatch(p):
            raise bad_request("permissions", f"Permission '{p}' is not valid.")


# ---------------------------------------------------------------- firewall semantics


def network_ref(text, project):
    """(project, name) of a full or partial network URL, or ApiError."""
    t = text.strip()
    m = re.match(r"^https?://[^/]+/compute/[^/]+/(.*)$", t)
    rest = m.group(1) if m else t.lstrip("/")
    parts = rest.split("/")
    if len(parts) == 5 and parts[0] == "projects" and parts[2:4] == ["global", "networks"]:
        return parts[1], parts[4]
    if len(parts) == 3 and parts[:2] == ["global", "networks"]:
        return project, parts[2]
    if len(parts) == 1 and NAME.fullmatch(parts[0]):
        return project, parts[0]
    raise invalid(f"Invalid value for field 'resource.network': '{text}'. The URL is malformed.")


def check_ports(protocol, ports, where):
    if ports and protocol.lower() not in WITH_PORTS:
        raise invalid(f"Invalid value for field '{where}.ports': ports are only valid for tcp, udp and sctp.")
    for p in ports:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", p)
        if not m:
            raise invalid(f"Invalid value for field '{where}.ports': '{p}'. Invalid port specification.")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi > 65535 or lo > hi:
            raise invalid(f"Invalid value for field '{where}.ports': '{p}'. Ports must be 0-65535, low to high.")


def check_firewall(fw, project, name_in_path=None, partial=False):
    """The API's rules for a firewall body (insert and update: the whole rule; patch: the
    result of merging the patch into the stored rule, checked whole by the caller)."""
    check_schema(fw, SCHEMAS["Firewall"], "")
    name = fw.get("name")
    if name is None:
        raise ApiError(400, "required", "Required field 'resource.name' not specified")
    if not NAME.fullmatch(name):
        raise invalid(f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'")
    if name_in_path is not None and name != name_in_path:
        raise invalid(f"Invalid value for field 'resource.name': '{name}'. The name cannot be changed.")
    if partial:
        return
    prio = int(fw.get("priority", 1000))
    if not 0 <= prio <= 65535:
        raise invalid(f"Invalid value for field 'resource.priority': '{prio}'. Must be greater than or equal to 0 and less than or equal to 65535.")
    allowed, denied = fw.get("allowed") or [], fw.get("denied") or []
    if bool(allowed) == bool(denied):
        raise invalid("Invalid value for field 'resource': exactly one of 'allowed' and 'denied' must be given.")
    for key, entries in (("allowed", allowed), ("denied", denied)):
        for i, e in enumerate(entries):
            where = f"resource.{key}[{i}]"
            proto = e.get("IPProtocol")
            if proto is None:
                raise ApiError(400, "required", f"Required field '{where}.IPProtocol' not specified")
            lp = proto.lower()
            if lp not in PROTOCOLS and not (lp.isdigit() and 0 <= int(lp) <= 255):
                raise invalid(f"Invalid value for field '{where}.IPProtocol': '{proto}'.")
            check_ports(lp, e.get("ports") or [], where)
    for key in ("sourceRanges", "destinationRanges"):
        for r in fw.get(key) or []:
            try:
                ipaddress.ip_network(r, strict=False)
            except ValueError:
                raise invalid(f"Invalid value for field 'resource.{key}': '{r}'. Must be a valid IPV4 or IPV6 CIDR range.")
    for key in ("sourceTags", "targetTags"):
        for tag in fw.get(key) or []:
            if not NAME.fullmatch(tag):
                raise invalid(f"Invalid value for field 'resource.{key}': '{tag}'.")
    for key in ("sourceServiceAccounts", "targetServiceAccounts"):
        for sa in fw.get(key) or []:
            if not EMAIL.fullmatch(sa):
                raise invalid(f"Invalid value for field 'resource.{key}': '{sa}'. Must be a service account e-mail.")
    direction = fw.get("direction", "INGRESS")
    if direction == "EGRESS" and (fw.get("sourceTags") or fw.get("sourceServiceAccounts")):
        raise invalid("Invalid value for field 'resource.sourceTags': EGRESS rules cannot have source tags or source service accounts.")
    if fw.get("targetServiceAccounts") and (fw.get("targetTags") or fw.get("sourceTags")):
        raise invalid("Invalid value for field 'resource.targetServiceAccounts': cannot be combined with targetTags or sourceTags.")
    if fw.get("sourceServiceAccounts") and (fw.get("sourceTags") or fw.get("targetTags")):
        raise invalid("Invalid value for field 'resource.sourceServiceAccounts': cannot be combined with sourceTags or targetTags.")
    lc = fw.get("logConfig") or {}
    if "metadata" in lc and not lc.get("enable"):
        raise invalid("Invalid value for field 'resource.logConfig.metadata': only valid when logging is enabled.")
    if len(fw.get("description", "")) > 2048:
        raise invalid("Invalid value for field 'resource.description': longer than 2048 characters.")


READ_ONLY = ("id", "kind", "selfLink", "creationTimestamp")


class Store:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.networks = set()  # (project, name)
        self.firewalls = {}  # project -> name -> resource
        self.ops = {}  # project -> name -> operation record
        self.pending_names = {}  # project -> set of names with an insert pending
        self.next_id = 4_000_000_000_000_000_000
        self.requests = 0
        self.by_caller = {}  # project -> requests (--throttle-every counts per project)
        self.mutations = 0
        self.counts = {"mutating": 0, "methods": {}, "faults": 0, "pages": 0, "rejected": 0, "operations_get": 0, "log": [], "iam": [],
                       "most_in_flight": 0, "lost": 0}
        self.in_flight = 0  # mutations in their --delay-mutations sleep right now
        self.armed = []  # concurrent edits: {project, after_lists, firewall}
        self.lists_done = {}  # project -> completed listings

    def new_id(self):
        self.next_id += 7919
        return str(self.next_id)

    def fill(self, fw, project):
        """A stored rule: the body with the API's defaults and output fields."""
        out = {k: v for k, v in fw.items() if k not in READ_ONLY and k != "params"}
        np, nn = network_ref(out.get("network", "global/networks/default"), project)
        if (np, nn) not in self.networks:
            raise ApiError(404, "notFound", f"The resource 'projects/{np}/global/networks/{nn}' was not found")
        out["network"] = f"{API}projects/{np}/global/networks/{nn}"
        out.setdefault("direction", "INGRESS")
        out["priority"] = int(out.get("priority", 1000))
        out.setdefault("disabled", False)
        out.setdefault("logConfig", {"enable": False})
        if out["direction"] == "INGRESS" and not (
            out.get("sourceRanges") or out.get("sourceTags") or out.get("sourceServiceAccounts")
        ):
            out["sourceRanges"] = ["0.0.0.0/0"]
        if out["direction"] == "EGRESS" and not out.get("destinationRanges"):
            out["destinationRanges"] = ["0.0.0.0/0"]
        for k in list(out):
            if out[k] == [] or out[k] is None:
                del out[k]
        out["kind"] = "compute#firewall"
        out["selfLink"] = f"{API}projects/{project}/global/firewalls/{out['name']}"
        return out

    def put(self, project, fw, keep=None):
        """Store a filled rule (keeping the id and creation time of `keep`)."""
        if keep:
            fw["id"], fw["creationTimestamp"] = keep["id"], keep["creationTimestamp"]
        else:
            fw["id"] = self.new_id()
            fw["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000-07:00")
        self.firewalls.setdefault(project, {})[fw["name"]] = fw

    def operation(self, project, kind, name, effect):
        op_name = f"operation-{int(time.time() * 1000)}-{self.new_id()[-8:]}"
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000-07:00")
        op = {
            "kind": "compute#operation",
            "id": self.new_id(),
            "name": op_name,
            "operationType": kind,
            "targetLink": f"{API}projects/{project}/global/firewalls/{name}",
            "status": "RUNNING",
            "user": "anonymous@example.invalid",
            "progress": 0,
            "insertTime": now,
            "startTime": now,
            "selfLink": f"{API}projects/{project}/global/operations/{op_name}",
        }
        if self.args.lose_mutation and self.mutations == self.args.lose_mutation:
            # acknowledged, and DONE without error, but nothing changes: a write the client
            # must not take the answer's word for
            self.counts["lost"] += 1

            def effect():
                # the name is free again (an insert), and the rule is not stored
                self.pending_names.get(project, set()).discard(name)
        rec = {"op": op, "effect": effect, "polls": self.args.op_polls,
               "deadline": time.time() + self.args.settle_ms / 1000.0}
        self.ops.setdefault(project, {})[op_name] = rec
        return op

    def settle(self, rec):
        if rec["op"]["status"] == "DONE":
            return
        try:
            rec["effect"]()
        except ApiError as e:
            rec["op"]["error"] = {"errors": [{"code": "RESOURCE_ERROR", "message": e.message}]}
            rec["op"]["httpErrorStatusCode"] = e.code
            rec["op"]["httpErrorMessage"] = e.reason
        rec["op"]["status"] = "DONE"
        rec["op"]["progress"] = 100
        rec["op"]["endTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000-07:00")

    def settle_due(self):
        now = time.time()
        for ops in self.ops.values():
            for rec in ops.values():
                if rec["op"]["status"] != "DONE" and now >= rec["deadline"]:
                    self.settle(rec)


def filter_matches(flt, fw):
    if not flt:
        return True
    m = re.fullmatch(r'\s*(name|network)\s*(=|!=|eq|ne)\s*(?:"([^"]*)"|(\S+))\s*', flt)
    if not m:
        raise invalid(f"Invalid value for field 'filter': '{flt}'. Invalid list filter expression.")
    field, op, value = m.group(1), m.group(2), m.group(3) if m.group(3) is not None else m.group(4)
    have = fw.get(field, "")
    if op in ("=", "!="):
        hit = have == value
    else:
        hit = re.fullmatch(value, have) is not None
    return hit if op in ("=", "eq") else not hit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store = None

    def setup(self):
        super().setup()
        # headers and body are two writes: without this, Nagle's algorithm and the client's
        # delayed ACK stall every answer for ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *a):
        if os.environ.get("GCP_FAKE_LOG"):
            sys.stderr.write("gcp_fake: " + (fmt % a) + "\n")

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed mid-call (the kill -9 test): nobody to answer

    def body(self):
        raw = self._raw
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise invalid("Invalid JSON payload received.")

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def handle_any(self, method):
        # the whole request is read first: a fault answered early must not leave a body
        # behind on a kept-alive connection
        n = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(n) if n else b""
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        try:
            if path.startswith("/__"):
                self.reply(200, self.admin(method, path, self.body()))
                return
            s = self.store
            with s.lock:
                s.requests += 1
                s.settle_due()
                crm = path.startswith("/v3/")
                mutating = (method in ("POST", "PATCH", "PUT", "DELETE") and "/operations/" not in path
                            and not crm)
                a = s.args
                # quotas are per project: every Nth request of each project is throttled, so
                # writers of different projects side by side do not throttle each other's retries
                parts = path.split("/")
                caller = (parts[4] if path.startswith("/compute/v1/projects/") and len(parts) > 4
                          else parts[3].split(":")[0] if crm and len(parts) > 3 else "")
                s.by_caller[caller] = s.by_caller.get(caller, 0) + 1
                if (a.throttle_every and s.by_caller[caller] % a.throttle_every == 0) or (
                    a.storm_at and a.storm_at <= s.requests < a.storm_at + a.storm_len
                ):
                    s.counts["faults"] += 1
                    if crm:
                        raise RpcError(429, "Quota exceeded for quota metric 'Read requests'.")
                    raise ApiError(429, "rateLimitExceeded", "Rate Limit Exceeded")
                project = path.split("/")[4] if path.startswith("/compute/v1/projects/") and len(path.split("/")) > 4 else ""
                if mutating and a.fail_after is not None and s.mutations >= a.fail_after and (
                    not a.fail_project or a.fail_project == project
                ):
                    s.counts["faults"] += 1
                    raise ApiError(503, "backendError", "Internal error. Please try again or contact Google Support.")
            if crm:
                with self.store.lock:
                    code, out = self.test_iam_permissions(method, path)
                self.reply(code, out)
                return
            if mutating and self.store.args.delay_mutations:
                # how many mutations are in their delay at once: writers running side by side
                with self.store.lock:
                    s.in_flight += 1
                    s.counts["most_in_flight"] = max(s.counts["most_in_flight"], s.in_flight)
                try:
                    time.sleep(self.store.args.delay_mutations / 1000.0)
                finally:
                    with self.store.lock:
                        s.in_flight -= 1
            body = self.body()
            with self.store.lock:
                if mutating:
                    s.mutations += 1
                    s.counts["mutating"] += 1
                code, out = self.api(method, path, query, body)
                if mutating:
                    # the order writes were accepted in: [method, rule name]
                    rule = path.rsplit("/", 1)[-1] if method != "POST" else (body or {}).get("name")
                    s.counts["log"].append([method, rule])
            self.reply(code, out)
        except ApiError as e:
            if not path.startswith("/__"):
                with self.store.lock:
                    if e.code in (400, 404, 409, 412):
                        self.store.counts["rejected"] += 1
            self.reply(e.code, e.body())

    def count(self, name):
        m = self.store.counts["methods"]
        m[name] = m.get(name, 0) + 1

    def test_iam_permissions(self, method, path):
        """Cloud Resource Manager v3 projects.testIamPermissions: the subset of the asked
        permissions the caller holds on the project."""
        s = self.store
        m = CRM_PATH.fullmatch(path)
        if not m or method != "POST":
            # a custom method is POST only: anything else is no route at all
            raise RpcError(404, f"The requested URL {path} was not found on this server.")
        self.count("projects.testIamPermissions")
        if s.args.iam_fail:
            code = int(s.args.iam_fail)
            raise RpcError(code, {
                403: "The caller does not have permission",
                404: "Requested entity was not found.",
            }.get(code, "The service is currently unavailable."))
        raw = self._raw
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise bad_request("", "Invalid JSON payload received.")
        # the body is read against the schema first (as the HTTP front end transcodes it),
        # then the project is looked up (a caller learns nothing of a project it may not
        # see), then the method's own rules
        check_request_schema(body)
        project = m.group(1).split("/", 1)[1]
        if project not in {p for p, _ in s.networks}:
            raise RpcError(403, "The caller does not have permission")
        check_request(body)
        asked = body["permissions"]
        s.counts["iam"].append({"project": project, "permissions": asked})
        withheld = set()
        for w in s.args.withhold or []:
            scope, _, perm = w.rpartition("/")
            if scope in ("", project):
                withheld.add(perm)
        granted = []
        for p in asked:
            if p not in withheld and p not in granted:
                granted.append(p)
        # proto3 JSON: an empty repeated field is left out
        return 200, ({"permissions": granted} if granted else {})

    def api(self, method, path, query, body):
        s = self.store
        m = re.fullmatch(r"/compute/v1/projects/([^/]+)/global/(firewalls|operations|networks)(?:/([^/]+))?(/wait)?", path)
        if not m:
            raise ApiError(404, "notFound", f"The requested URL {path} was not found.")
        project, coll, name, wait = m.groups()
        if coll == "networks":
            if method != "GET" or name is None:
                raise ApiError(405, "methodNotAllowed", "Method not allowed")
            self.count("networks.get")
            if (project, name) not in s.networks:
                raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/networks/{name}' was not found")
            return 200, {"kind": "compute#network", "id": "5" * 18, "name": name,
                         "selfLink": f"{API}projects/{project}/global/networks/{name}"}
        if coll == "operations":
            if name is None:
                raise ApiError(404, "notFound", "not found")
            self.count("globalOperations.wait" if wait else "globalOperations.get")
            s.counts["operations_get"] += 1
            rec = s.ops.get(project, {}).get(name)
            if rec is None:
                raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/operations/{name}' was not found")
            if rec["op"]["status"] != "DONE":
                rec["polls"] -= 1
                if rec["polls"] < 0 or wait:
                    s.settle(rec)
            return 200, rec["op"]
        fws = s.firewalls.setdefault(project, {})
        pending = s.pending_names.setdefault(project, set())
        if name is None and method == "GET":
            self.count("firewalls.list")
            return 200, self.list(project, query)
        if name is None and method == "POST":
            self.count("firewalls.insert")
            if body is None:
                raise ApiError(400, "required", "Required field 'resource' not specified")
            check_firewall(body, project)
            fw = s.fill(body, project)
            n = fw["name"]
            if n in fws or n in pending:
                raise ApiError(409, "alreadyExists", f"The resource 'projects/{project}/global/firewalls/{n}' already exists")
            pending.add(n)

            def effect():
                pending.discard(n)
                s.put(project, fw)

            return 200, s.operation(project, "insert", n, effect)
        if name is None:
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        if method == "GET":
            self.count("firewalls.get")
            if name not in fws:
                raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
            return 200, fws[name]
        if method == "DELETE":
            self.count("firewalls.delete")
            if name not in fws:
                raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/firewalls/{name}' was not found")

            def effect():
                fws.pop(name, None)

            return 200, s.operation(project, "delete", name, effect)
        if method in ("PATCH", "PUT"):
            self.count("firewalls.patch" if method == "PATCH" else "firewalls.update")
            if body is None:
                raise ApiError(400, "required", "Required field 'resource' not specified")
            if name not in fws:
                raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
            old = fws[name]
            if method == "PATCH":
                check_firewall(body, project, name_in_path=name, partial=True)
                merged = merge_patch({k: v for k, v in old.items() if k not in READ_ONLY}, body)
                # the merged rule must still be a valid rule as a whole
                check_firewall(merged, project, name_in_path=name)
                new = merged
            else:
                check_firewall(body, project, name_in_path=name)
                new = body
            for k in ("network", "direction"):
                have = old.get(k)
                want = new.get(k, have)
                if k == "network" and want is not None:
                    want = s.fill({"name": name, "network": want, "allowed": [{"IPProtocol": "all"}]}, project)["network"]
                if want != have and not (k == "direction" and want is None):
                    raise invalid(f"Invalid value for field 'resource.{k}': the {k} of a firewall rule cannot be changed.")
            filled = s.fill(new, project)

            def effect():
                if name not in fws:
                    raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
                s.put(project, filled, keep=fws[name])

            return 200, s.operation(project, "patch" if method == "PATCH" else "update", name, effect)
        raise ApiError(405, "methodNotAllowed", "Method not allowed")

    def list(self, project, query):
        s = self.store
        flt = query.get("filter", "")
        try:
            size = int(query.get("maxResults", 500))
        except ValueError:
            raise invalid("Invalid value for field 'maxResults'")
        if not 0 <= size <= 500:
            raise invalid(f"Invalid value for field 'maxResults': '{size}'. Must be less than or equal to 500")
        size = min(size or 500, s.args.page_size)
        rules = [fw for _, fw in sorted(s.firewalls.get(project, {}).items()) if filter_matches(flt, fw)]
        start = 0
        token = query.get("pageToken")
        if token:
            try:
                p, f, start = json.loads(base64.urlsafe_b64decode(token.encode()))
                assert p == project and f == flt
            except Exception:
                raise invalid(f"Invalid value for field 'pageToken': '{token}'")
        page = rules[start:start + size]
        s.counts["pages"] += 1
        out = {"kind": "compute#firewallList", "id": f"projects/{project}/global/firewalls",
               "selfLink": f"{API}projects/{project}/global/firewalls"}
        if page:
            out["items"] = page
        if start + size < len(rules):
            out["nextPageToken"] = base64.urlsafe_b64encode(json.dumps([project, flt, start + size]).encode()).decode()
        else:
            # a listing finished: an armed concurrent edit lands now, between this observation
            # and the writes that follow it
            done = s.lists_done.get(project, 0) + 1
            s.lists_done[project] = done
            for arm in list(s.armed):
                if arm["project"] == project and done >= arm["after_lists"]:
                    s.armed.remove(arm)
                    fw = s.fill(arm["firewall"], project)
                    s.put(project, fw, keep=s.firewalls.get(project, {}).get(fw["name"]))
        return out

    def admin(self, method, path, body):
        s = self.store
        with s.lock:
            if path == "/__counts":
                return s.counts
            parts = path.strip("/").split("/")
            if parts[:2] == ["__admin", "networks"] and method == "POST":
                s.networks.add((body["project"], body["network"]))
                return {}
            if parts[:2] == ["__admin", "firewalls"] and len(parts) == 3:
                project = parts[2]
                if method == "GET":
                    return [fw for _, fw in sorted(s.firewalls.get(project, {}).items())]
                if method == "PUT":
                    check_firewall(body, project)
                    fw = s.fill(body, project)
                    s.put(project, fw, keep=s.firewalls.get(project, {}).get(fw["name"]))
                    return fw
            if parts[:2] == ["__admin", "firewalls"] and len(parts) == 4 and method == "DELETE":
                if s.firewalls.get(parts[2], {}).pop(parts[3], None) is None:
                    raise ApiError(404, "notFound", "no such rule")
                return {}
            if parts == ["__admin", "arm"] and method == "POST":
                # after `after_lists` more complete listings of the project
                check_firewall(body["firewall"], body["project"])
                body = dict(body, after_lists=s.lists_done.get(body["project"], 0) + body["after_lists"])
                s.armed.append(body)
                return {}
            if parts == ["__admin", "faults"] and method == "POST":
                # change the fault flags of a running fake (names as the command line's)
                for k, v in body.items():
                    k = k.replace("-", "_")
                    if not hasattr(s.args, k):
                        raise invalid(f"no fault {k}")
                    setattr(s.args, k, v)
                return vars(s.args)
        raise ApiError(404, "notFound", f"no admin path {path}")


def merge_patch(target, patch):
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--op-polls", type=int, default=2, help="polls an operation stays RUNNING")
    p.add_argument("--settle-ms", type=int, default=3000, help="an operation is DONE after this long unpolled")
    p.add_argument("--page-size", type=int, default=500, help="largest page a listing answers")
    p.add_argument("--throttle-every", type=int, default=0, help="429 on every Nth request of each project")
    p.add_argument("--storm-at", type=int, default=0, help="429 on requests N.. (a storm)")
    p.add_argument("--storm-len", type=int, default=0)
    p.add_argument("--fail-after", type=int, default=None, help="503 on mutations after N of them")
    p.add_argument("--fail-project", default="", help="only in this project")
    p.add_argument("--delay-mutations", type=int, default=0, help="milliseconds each mutation takes")
    p.add_argument("--lose-mutation", type=int, default=0,
                   help="the Nth mutation's operation finishes DONE without error and changes nothing")
    p.add_argument("--network", action="append", default=[], help="PROJECT/NETWORK that exists")
    p.add_argument("--withhold", action="append", default=[],
                   help="PERMISSION or PROJECT/PERMISSION testIamPermissions does not grant (default: all granted)")
    p.add_argument("--iam-fail", type=int, default=None,
                   help="testIamPermissions answers this HTTP status (403, 404, 503, ...)")
    return p.parse_args(argv)


def serve(args):
    store = Store(args)
    for pn in args.network:
        project, network = pn.split("/", 1)
        store.networks.add((project, network))
    handler = type("BoundHandler", (Handler,), {"store": store})
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    return server, store


def main():
    args = parse_args()
    server, _ = serve(args)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
