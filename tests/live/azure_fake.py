#!/usr/bin/env python3
"""A stateful fake of the ARM Network API (api-version 2024-03-01), and of the one Authorization
call `apply --preflight` makes (api-version 2022-04-01), for intentwall's live Azure tests, on
loopback only. Python 3 standard library only.

What it implements (only what intentwall calls, and what the tests use to edit state "by hand"):
  networkSecurityGroups       list (per resource group), GET, PUT, DELETE
  securityRules               list, GET, PUT, DELETE
  defaultSecurityRules        list, GET (the six rules every NSG has)
  applicationSecurityGroups   GET, PUT, DELETE
  operations                  GET (long-running operations: InProgress for --lro-polls polls)
  Microsoft.Authorization/permissions   GET at a resource group (Permissions_ListForResourceGroup,
                              api-version 2022-04-01, tests/live/azure_authorization_schema.json)

ARM behaviour: request bodies validated against tests/live/azure_schema.json (types, enums,
required fields) and the constraints it lists (priority range and uniqueness per direction,
mutually exclusive fields, ports, prefixes, ASG references); etags with If-Match / If-None-Match
(412 PreconditionFailed); 201 on create, 200 on update, 202 + Azure-AsyncOperation on delete,
204 deleting what is not there; ARM error bodies {"error": {"code", "message"}}; 404
ResourceGroupNotFound / ResourceNotFound / ParentResourceNotFound; a bearer token required.

Test hooks (never part of ARM):
  GET  /__counts   {"mutating": n, "requests": n, "by_call": {...}, "throttled": n, "early": n}
  POST /__faults   JSON merged into the fault settings (same names as the flags below)
  POST /__rg       {"subscription", "resource_group", "location"}: a resource group exists
  A request with header `x-test-hand: 1` is a hand edit by the test: not counted, no faults.

Faults: --throttle-every N (every Nth counted request of each subscription answers 429 TooManyRequests with
Retry-After: --retry-after S; a request of the same subscription arriving before that time is
counted `early`), --fail-after N (after N mutations every mutation answers 500), --delay-ms M
(each mutation waits M ms), --die-after N (the process exits abruptly at its Nth mutation).
Permissions (Permissions_ListForResourceGroup): the caller's entries are, by default, the role
`intentwall permissions azure` prints (ROLE_ACTIONS, one entry); {"permissions": [entries]} to
/__faults (or --permissions JSON) replaces them, each entry {"actions", "notActions",
"dataActions", "notDataActions"} checked against the schema; {"permissions": null} restores the
default. {"permissions_error": [status, code]} (or --permissions-error STATUS:CODE) answers every
permissions request with that ARM error; {"permissions_page": N} (or --permissions-page N) cuts
the answer into pages of N entries joined by `nextLink` ($skiptoken), as the API's pageable
declaration allows. The requests are counted in `permissions` of /__counts.
--deny-operations: reading an operation's status answers 403 (a role assigned to resource
groups does not reach the subscription-scope operation); the resource itself still finishes
when polled. --tamper-next (or {"tamper_next": true} to /__faults): the next PUT of a security rule finds
it edited by someone else just before (its description and etag changed; made, if missing), the
race an etag precondition must catch. --state FILE keeps the state across restarts. The first
stdout line is the port.
"""

import argparse
import ipaddress
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = json.load(open(os.path.join(HERE, "azure_schema.json")))
API = SCHEMA["api_version"]
DEFS = SCHEMA["definitions"]
AUTH = json.load(open(os.path.join(HERE, "azure_authorization_schema.json")))
AUTH_API = AUTH["api_version"]
DEFS.update(AUTH["definitions"])

# The actions of the role `intentwall permissions azure` prints (tests/live_azure.rs checks the
# two agree): what the caller holds unless a test says otherwise.
ROLE_ACTIONS = [
    "Microsoft.Network/networkSecurityGroups/read",
    "Microsoft.Network/networkSecurityGroups/write",
    "Microsoft.Network/networkSecurityGroups/securityRules/read",
    "Microsoft.Network/networkSecurityGroups/securityRules/write",
    "Microsoft.Network/networkSecurityGroups/securityRules/delete",
    "Microsoft.Network/applicationSecurityGroups/read",
    "Microsoft.Network/applicationSecurityGroups/write",
    "Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action",
    "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action",
    "Microsoft.Authorization/permissions/read",
]

LOCK = threading.RLock()
STATE = {"rgs": {}, "nsgs": {}, "asgs": {}, "ops": {}, "pending": {}}
COUNTS = {"mutating": 0, "requests": 0, "by_call": {}, "throttled": 0, "early": 0, "polls": 0,
          "permissions": 0}
FAULTS = {"throttle_every": 0, "retry_after": 1, "fail_after": -1, "delay_ms": 0,
          "die_after": -1, "lro_polls": 2, "poll_retry_after": 0, "tamper_next": False,
          "deny_operations": False, "permissions": None, "permissions_error": None,
          "permissions_page": 0}
NOT_BEFORE = {}
BY_SUB = {}  # subscription -> requests counted for --throttle-every
ARGS = None

DEFAULTS = [
    ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Inbound"),
    ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer", "*", "Allow", 65001, "Inbound"),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Outbound"),
    ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow", 65001, "Outbound"),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
]


class ArmError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad(code, message):
    return ArmError(400, code, message)


def etag():
    return 'W/"%s"' % uuid.uuid4()


def persist():
    if ARGS and ARGS.state:
        tmp = ARGS.state + ".tmp"
        with open(tmp, "w") as f:
            json.dump(STATE, f)
        os.replace(tmp, ARGS.state)


# ---------------------------------------------------------------- validation (the schema subset)

def check_type(value, schema, where):
    """Types, enums, required fields and numeric ranges of `schema` (a definition or a property)."""
    if "$ref" in schema:
        return check_type(value, DEFS[schema["$ref"]], where)
    t = schema.get("type")
    ok = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        None: True,
    }[t]
    if not ok:
        raise bad("InvalidRequestFormat", "%s must be of type %s, found %s" % (where, t, json.dumps(value)))
    if "enum" in schema and value not in schema["enum"]:
        raise bad("InvalidRequestFormat", "%s must be one of %s, found %s" % (where, schema["enum"], json.dumps(value)))
    if t == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise bad("SecurityRuleInvalidPriority" if where.endswith("priority") else "InvalidRequestFormat",
                      "%s must be between %s and %s, found %s" % (where, lo, hi, value))
    if t == "string" and "maxLength" in schema and len(value) > schema["maxLength"]:
        raise bad("InvalidRequestFormat", "%s is longer than %d characters" % (where, schema["maxLength"]))
    if t == "array":
        for i, item in enumerate(value):
            check_type(item, schema["items"], "%s[%d]" % (where, i))
    if t == "object":
        for req in schema.get("required", []):
            if value.get(req) is None:
                raise bad("InvalidRequestFormat", "%s.%s is required" % (where, req))
        for k, sub in schema.get("properties", {}).items():
            if value.get(k) is not None:
                check_type(value[k], sub, "%s.%s" % (where, k))


RULE_NAME = re.compile(r"^\w(?:[\w.-]{0,78}\w|[\w.-]{0,78}_)?$")
TAG = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")


def is_address(text):
    try:
        net = ipaddress.ip_network(text, strict=True)
        return net
    except ValueError:
        return None


def check_prefix(p, where):
    if p == "*" or TAG.match(p) and not is_address(p):
        return
    try:
        ipaddress.ip_network(p, strict=True)
    except ValueError:
        raise bad("SecurityRuleInvalidAddressPrefix", "%s: %r is not an address, CIDR, service tag or *" % (where, p))


def check_port(p, where):
    if p == "*":
        return
    m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", p)
    lo = int(m.group(1)) if m else -1
    hi = int(m.group(2)) if m and m.group(2) else lo
    if not m or not (0 <= lo <= hi <= 65535):
        raise bad("SecurityRuleInvalidPortRange", "%s: %r is not *, a port or a range 0-65535" % (where, p))


def validate_rule(name, body, nsg, sub, rg):
    """The whole SecurityRule check: schema, then the constraints ARM states in prose."""
    if not RULE_NAME.match(name or ""):
        raise bad("InvalidResourceName", "security rule name %r is not valid" % name)
    check_type(body, DEFS["SecurityRule"], "securityRule")
    p = body["properties"]
    for side in ("source", "destination"):
        one = p.get(side + "AddressPrefix")
        many = p.get(side + "AddressPrefixes") or []
        asgs = p.get(side + "ApplicationSecurityGroups") or []
        given = [k for k, v in ((side + "AddressPrefix", one), (side + "AddressPrefixes", many),
                                (side + "ApplicationSecurityGroups", asgs)) if v]
        if len(given) > 1:
            raise bad("SecurityRuleConflictingProperties",
                      "security rule %s: only one of %s may be given" % (name, ", ".join(given)))
        if not given:
            raise bad("SecurityRuleParameterMissing",
                      "security rule %s has no %s (address prefix, prefixes or application security groups)" % (name, side))
        if one:
            check_prefix(one, "%s.%sAddressPrefix" % (name, side))
        for item in many:
            check_prefix(item, "%s.%sAddressPrefixes" % (name, side))
            if len(many) > 1 and not is_address(item):
                raise bad("SecurityRuleInvalidAddressPrefix",
                          "%s.%sAddressPrefixes: %r: an augmented rule lists addresses only, not service tags" % (name, side, item))
        if len(asgs) > 10:
            raise bad("SecurityRuleTooManyApplicationSecurityGroups", "%s: more than 10 %s ASGs" % (name, side))
        for a in asgs:
            asg = STATE["asgs"].get(a["id"].lower())
            if asg is None:
                raise bad("InvalidResourceReference", "%s: application security group %s does not exist" % (name, a["id"]))
            if asg["location"] != nsg["location"]:
                raise bad("ApplicationSecurityGroupNotInSameLocation",
                          "%s: ASG %s is in %s, the NSG in %s" % (name, a["id"], asg["location"], nsg["location"]))
        pr = p.get(side + "PortRange")
        prs = p.get(side + "PortRanges") or []
        if pr and prs:
            raise bad("SecurityRuleConflictingProperties", "security rule %s: only one of %sPortRange, %sPortRanges" % (name, side, side))
        if not pr and not prs:
            raise bad("SecurityRuleParameterMissing", "security rule %s has no %s port range" % (name, side))
        for item in ([pr] if pr else prs):
            check_port(item, "%s.%sPortRange" % (name, side))
    for other in nsg["properties"]["securityRules"]:
        op = other["properties"]
        if other["name"].lower() != name.lower() and op["priority"] == p["priority"] and op["direction"] == p["direction"]:
            raise bad("SecurityRuleConflict",
                      "Security rule %s conflicts with rule %s. Rules cannot have the same Priority and Direction." % (name, other["name"]))
    if len(nsg["properties"]["securityRules"]) >= 1000 and not find_rule(nsg, name):
        raise bad("SecurityRulesPerNsgLimitReached", "the NSG has 1000 security rules")


def validate_nsg(body):
    check_type(body, DEFS["NetworkSecurityGroup"], "networkSecurityGroup")


def validate_asg(body):
    check_type(body, DEFS["ApplicationSecurityGroup"], "applicationSecurityGroup")


# ---------------------------------------------------------------- resources

def rid(sub, rg, *parts):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/%s" % (sub, rg, "/".join(parts))


def nsg_key(sub, rg, name):
    return ("%s/%s/%s" % (sub, rg, name)).lower()


def find_rule(nsg, name):
    for r in nsg["properties"]["securityRules"]:
        if r["name"].lower() == name.lower():
            return r
    return None


def rule_resource(sub, rg, nsg_name, name, props, tag=None, state="Succeeded"):
    keep = {k: v for k, v in props.items() if k != "provisioningState" and v not in (None, [], "")}
    keep["provisioningState"] = state
    for side in ("source", "destination"):
        keep.setdefault(side + "AddressPrefixes", [])
        keep.setdefault(side + "PortRanges", [])
    return {"name": name, "id": rid(sub, rg, "networkSecurityGroups", nsg_name, "securityRules", name),
            "etag": tag or etag(), "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "properties": keep}


def default_rules(sub, rg, nsg_name, tag):
    out = []
    for name, desc, src, dst, access, prio, direction in DEFAULTS:
        out.append({"name": name, "id": rid(sub, rg, "networkSecurityGroups", nsg_name, "defaultSecurityRules", name),
                    "etag": tag, "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
                    "properties": {"provisioningState": "Succeeded", "description": desc, "protocol": "*",
                                   "sourcePortRange": "*", "destinationPortRange": "*",
                                   "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
                                   "access": access, "priority": prio, "direction": direction,
                                   "sourcePortRanges": [], "destinationPortRanges": [],
                                   "sourceAddressPrefixes": [], "destinationAddressPrefixes": []}})
    return out


def check_condition(headers, current):
    """If-Match / If-None-Match against the resource's etag (None: it does not exist)."""
    im, inm = headers.get("If-Match"), headers.get("If-None-Match")
    if im is not None and im != "*" and (current is None or current.get("etag") != im):
        raise ArmError(412, "PreconditionFailed",
                       "The condition specified using HTTP conditional header(s) is not met (If-Match %s, current %s)"
                       % (im, current.get("etag") if current else "none"))
    if im == "*" and current is None:
        raise ArmError(412, "PreconditionFailed", "If-Match: * but the resource does not exist")
    if inm == "*" and current is not None:
        raise ArmError(412, "PreconditionFailed", "If-None-Match: * but the resource exists")


def new_operation(sub, location, on_done, resource=None):
    op = str(uuid.uuid4())
    STATE["ops"][op] = {"left": FAULTS["lro_polls"], "done": on_done}
    if resource:
        STATE["pending"][resource.lower()] = op
    return op


def progress(resource):
    """A GET of a resource still provisioning moves its operation on, as polling the operation
    does (clients may poll either)."""
    op = STATE["ops"].get(STATE["pending"].get(resource.lower(), ""))
    if op is None:
        return
    if op["left"] > 0:
        op["left"] -= 1
    if op["left"] == 0:
        finish(op)


# ---------------------------------------------------------------- HTTP

PERMISSIONS = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Authorization/permissions$",
    re.I)

PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/providers/Microsoft\.Network/"
    r"(?P<rest>.*)$", re.I)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, status, body, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed mid-call (the kill -9 test): nobody to answer

    def error(self, e, headers=None):
        h = dict(headers or {})
        h["x-ms-error-code"] = e.code
        self.send_json(e.status, {"error": {"code": e.code, "message": e.message}}, h)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise bad("InvalidRequestFormat", "the body is not JSON: %s" % e)

    def do_GET(self):
        self.handle_any("GET")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/__"):
                return self.hook(method, url.path)
            hand = self.headers.get("x-test-hand") == "1"
            with LOCK:
                body = self.body()
                if not hand:
                    COUNTS["requests"] += 1
                    if self.throttle(url.path):
                        return
                if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                    raise ArmError(401, "AuthenticationFailed", "no bearer token")
                want = AUTH_API if PERMISSIONS.match(url.path) else API
                if parse_qs(url.query).get("api-version") != [want]:
                    raise bad("InvalidApiVersionParameter", "api-version must be %s" % want)
                mutating = method in ("PUT", "DELETE")
                if mutating and not hand:
                    self.before_mutation()
                if method == "PUT" and not hand and FAULTS["tamper_next"]:
                    self.tamper(url.path, body)
                if PERMISSIONS.match(url.path):
                    status, out, headers = self.permissions(method, url)
                else:
                    status, out, headers = self.route(method, url.path, body)
                if mutating and not hand:
                    COUNTS["mutating"] += 1
                    call = "%s %s" % (method, kind_of_path(url.path))
                    COUNTS["by_call"][call] = COUNTS["by_call"].get(call, 0) + 1
                if mutating:
                    persist()
            if mutating and not hand and FAULTS["delay_ms"]:
                time.sleep(FAULTS["delay_ms"] / 1000.0)
            self.send_json(status, out, headers)
        except ArmError as e:
            self.error(e)

    def throttle(self, path):
        m = re.match(r"^/subscriptions/([^/]+)", path)
        sub = m.group(1).lower() if m else ""
        now = time.time()
        if NOT_BEFORE.get(sub, 0) > now:
            COUNTS["early"] += 1
        # ARM throttles per subscription: every Nth request of each one, so writers of other
        # subscriptions side by side do not throttle each other's retries
        BY_SUB[sub] = BY_SUB.get(sub, 0) + 1
        n = FAULTS["throttle_every"]
        if n and BY_SUB[sub] % n == 0:
            COUNTS["throttled"] += 1
            NOT_BEFORE[sub] = now + FAULTS["retry_after"]
            self.error(ArmError(429, "TooManyRequests", "Number of requests exceeded the limit; retry later"),
                       {"Retry-After": str(FAULTS["retry_after"])})
            return True
        return False

    def tamper(self, path, body):
        m = PATH.match(path)
        rest = m.group("rest").split("/") if m else []
        if len(rest) != 4 or rest[2].lower() != "securityrules":
            return
        nsg = STATE["nsgs"].get(nsg_key(m.group("sub"), m.group("rg"), rest[1]))
        if nsg is None:
            return
        FAULTS["tamper_next"] = False
        cur = find_rule(nsg, rest[3])
        if cur is not None:
            cur["properties"]["description"] = "edited concurrently"
            cur["etag"] = etag()
        else:
            props = dict((body or {}).get("properties") or {}, description="made concurrently")
            nsg["properties"]["securityRules"].append(
                rule_resource(m.group("sub"), m.group("rg"), nsg["name"], rest[3], props))
        COUNTS["tampered"] = rest[3]

    def before_mutation(self):
        done = COUNTS["mutating"]
        if FAULTS["die_after"] >= 0 and done >= FAULTS["die_after"]:
            persist()
            os._exit(9)
        if FAULTS["fail_after"] >= 0 and done >= FAULTS["fail_after"]:
            raise ArmError(500, "InternalServerError", "An error occurred (injected after %d writes)" % done)

    def hook(self, method, path):
        with LOCK:
            if path == "/__counts":
                return self.send_json(200, COUNTS)
            data = self.body() or {}
            if path == "/__faults" and method == "POST":
                if data.get("permissions") is not None:
                    check_permissions(data["permissions"])
                FAULTS.update(data)
                return self.send_json(200, FAULTS)
            if path == "/__rg" and method == "POST":
                STATE["rgs"][("%s/%s" % (data["subscription"], data["resource_group"])).lower()] = data["location"]
                persist()
                return self.send_json(200, {})
        raise ArmError(404, "NotFound", "no hook %s" % path)

    def permissions(self, method, url):
        """Permissions_ListForResourceGroup: the caller's permission entries at the resource
        group, in pages of `permissions_page` entries (0: one page)."""
        m = PERMISSIONS.match(url.path)
        hand = self.headers.get("x-test-hand") == "1"
        if not hand:
            COUNTS["permissions"] += 1
        if method != "GET":
            raise ArmError(405, "MethodNotAllowed", method)
        sub, rg = m.group("sub"), m.group("rg")
        if FAULTS["permissions_error"] and not hand:
            status, code = FAULTS["permissions_error"]
            raise ArmError(int(status), code,
                           "The client 'loopback' does not have authorization to perform action "
                           "'Microsoft.Authorization/permissions/read' over scope "
                           "'/subscriptions/%s/resourceGroups/%s' or the scope is invalid." % (sub, rg)
                           if int(status) == 403 else "injected %s" % code)
        if ("%s/%s" % (sub, rg)).lower() not in STATE["rgs"]:
            raise ArmError(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % rg)
        entries = FAULTS["permissions"]
        if entries is None:
            entries = [{"actions": ROLE_ACTIONS, "notActions": [], "dataActions": [], "notDataActions": []}]
        token = parse_qs(url.query).get("$skiptoken", ["0"])[0]
        if not token.isdigit() or int(token) > len(entries):
            raise bad("InvalidSkipToken", "$skiptoken %r is not one this API gave" % token)
        start, size = int(token), FAULTS["permissions_page"] or len(entries) or 1
        out = {"value": [dict({"actions": [], "notActions": [], "dataActions": [], "notDataActions": []}, **e)
                         for e in entries[start:start + size]]}
        if start + size < len(entries):
            out["nextLink"] = "http://%s%s?api-version=%s&$skiptoken=%d" % (
                self.headers.get("Host"), url.path, AUTH_API, start + size)
        check_type(out, DEFS["PermissionGetResult"], "permissionGetResult")
        return 200, out, {}

    def route(self, method, path, body):
        m = PATH.match(path)
        if not m or not m.group("rg"):
            raise ArmError(404, "NotFound", "no route %s" % path)
        sub, rg, rest = m.group("sub"), m.group("rg"), m.group("rest").split("/")
        if ("%s/%s" % (sub, rg)).lower() not in STATE["rgs"]:
            raise ArmError(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % rg)
        loc = STATE["rgs"][("%s/%s" % (sub, rg)).lower()]
        kind = rest[0].lower()
        if kind == "networksecuritygroups":
            if len(rest) == 1 and method == "GET":
                nsgs = [n for k, n in sorted(STATE["nsgs"].items()) if k.startswith(("%s/%s/" % (sub, rg)).lower())]
                return 200, {"value": nsgs}, {}
            if len(rest) == 2:
                return self.nsg(method, sub, rg, rest[1], body, loc)
            if len(rest) >= 3:
                nsg = STATE["nsgs"].get(nsg_key(sub, rg, rest[1]))
                if nsg is None:
                    raise ArmError(404, "ParentResourceNotFound", "network security group %s not found" % rest[1])
                if rest[2].lower() == "securityrules":
                    return self.rule(method, sub, rg, nsg, rest[3] if len(rest) > 3 else None, body)
                if rest[2].lower() == "defaultsecurityrules" and method == "GET":
                    rules = nsg["properties"]["defaultSecurityRules"]
                    if len(rest) == 3:
                        return 200, {"value": rules}, {}
                    for r in rules:
                        if r["name"].lower() == rest[3].lower():
                            return 200, r, {}
                    raise ArmError(404, "NotFound", "default rule %s not found" % rest[3])
        if kind == "applicationsecuritygroups" and len(rest) == 2:
            return self.asg(method, sub, rg, rest[1], body, loc)
        raise ArmError(404, "NotFound", "no route %s %s" % (method, path))

    def lro(self, sub, loc, status, out, done, extra=None):
        op = new_operation(sub, loc, done, out.get("id") if out else None)
        if self.headers.get("x-test-hand") == "1":
            finish(STATE["ops"][op])  # a hand edit is done when the test goes on
        host = self.headers.get("Host")
        url = "http://%s/subscriptions/%s/providers/Microsoft.Network/locations/%s/operations/%s?api-version=%s" % (host, sub, loc, op, API)
        headers = {"Azure-AsyncOperation": url, "Retry-After": str(FAULTS["poll_retry_after"])}
        if status == 202:
            headers["Location"] = url.replace("/operations/", "/operationResults/")
        headers.update(extra or {})
        return status, out, headers

    def nsg(self, method, sub, rg, name, body, loc):
        key = nsg_key(sub, rg, name)
        cur = STATE["nsgs"].get(key)
        if method == "GET":
            if cur is None:
                raise ArmError(404, "ResourceNotFound", "The Resource 'Microsoft.Network/networkSecurityGroups/%s' under resource group '%s' was not found." % (name, rg))
            progress(cur["id"])
            return 200, cur, {}
        if method == "PUT":
            if body is None:
                raise bad("InvalidRequestFormat", "a body is required")
            validate_nsg(body)
            check_condition(self.headers, cur)
            tag = etag()
            nsg = {"name": name, "id": rid(sub, rg, "networkSecurityGroups", name), "etag": tag,
                   "type": "Microsoft.Network/networkSecurityGroups", "location": body["location"],
                   "tags": body.get("tags") or {},
                   "properties": {"provisioningState": "Updating", "resourceGuid": str(uuid.uuid4()),
                                  "securityRules": [],
                                  "defaultSecurityRules": default_rules(sub, rg, name, tag)}}
            rules = (body.get("properties") or {}).get("securityRules") or []
            for r in rules:
                validate_rule(r.get("name"), r, nsg, sub, rg)
                nsg["properties"]["securityRules"].append(
                    rule_resource(sub, rg, name, r["name"], r["properties"], tag))
            STATE["nsgs"][key] = nsg
            return self.lro(sub, loc, 200 if cur else 201, nsg, ["nsg", key])
        if method == "DELETE":
            check_condition(self.headers, cur)
            if cur is None:
                return 204, None, {}
            del STATE["nsgs"][key]
            return self.lro(sub, loc, 202, None, None)
        raise ArmError(405, "MethodNotAllowed", method)

    def rule(self, method, sub, rg, nsg, name, body):
        rules = nsg["properties"]["securityRules"]
        if name is None:
            if method == "GET":
                return 200, {"value": rules}, {}
            raise ArmError(405, "MethodNotAllowed", method)
        cur = find_rule(nsg, name)
        if method == "GET":
            if cur is None:
                raise ArmError(404, "NotFound", "security rule %s not found" % name)
            progress(cur["id"])
            return 200, cur, {}
        if method == "PUT":
            if body is None:
                raise bad("InvalidRequestFormat", "a body is required")
            validate_rule(name, body, nsg, sub, rg)
            check_condition(self.headers, cur)
            new = rule_resource(sub, rg, nsg["name"], cur["name"] if cur else name, body["properties"], state="Updating")
            if cur:
                rules[rules.index(cur)] = new
            else:
                rules.append(new)
            nsg["etag"] = etag()
            return self.lro(sub, nsg["location"], 200 if cur else 201, new,
                            ["rule", nsg_key(sub, rg, nsg["name"]), new["name"]])
        if method == "DELETE":
            check_condition(self.headers, cur)
            if cur is None:
                return 204, None, {}
            rules.remove(cur)
            nsg["etag"] = etag()
            return self.lro(sub, nsg["location"], 202, None, None)
        raise ArmError(405, "MethodNotAllowed", method)

    def asg(self, method, sub, rg, name, body, loc):
        key = rid(sub, rg, "applicationSecurityGroups", name).lower()
        cur = STATE["asgs"].get(key)
        if method == "GET":
            if cur is None:
                raise ArmError(404, "ResourceNotFound", "The Resource 'Microsoft.Network/applicationSecurityGroups/%s' was not found." % name)
            return 200, cur, {}
        if method == "PUT":
            if body is None:
                raise bad("InvalidRequestFormat", "a body is required")
            validate_asg(body)
            check_condition(self.headers, cur)
            asg = {"name": name, "id": rid(sub, rg, "applicationSecurityGroups", name), "etag": etag(),
                   "type": "Microsoft.Network/applicationSecurityGroups", "location": body["location"],
                   "tags": body.get("tags") or {},
                   "properties": {"provisioningState": "Succeeded", "resourceGuid": str(uuid.uuid4())}}
            STATE["asgs"][key] = asg
            return self.lro(sub, loc, 200 if cur else 201, asg, None)
        if method == "DELETE":
            check_condition(self.headers, cur)
            if cur is None:
                return 204, None, {}
            del STATE["asgs"][key]
            return self.lro(sub, loc, 202, None, None)
        raise ArmError(405, "MethodNotAllowed", method)


def check_permissions(entries):
    """A test's permission entries must be what the API could answer."""
    if not isinstance(entries, list):
        raise bad("InvalidRequestFormat", "permissions must be a list of entries")
    for i, e in enumerate(entries):
        check_type(e, DEFS["Permission"], "permissions[%d]" % i)
        unknown = set(e) - set(DEFS["Permission"]["properties"])
        if unknown:
            raise bad("InvalidRequestFormat", "permissions[%d]: unknown fields %s" % (i, sorted(unknown)))


def kind_of_path(path):
    p = path.lower()
    for k in ("securityrules", "applicationsecuritygroups", "networksecuritygroups"):
        if "/" + k + "/" in p:
            return k
    return "other"


class OperationsAware(Handler):
    def route(self, method, path, body):
        m = re.match(r"^/subscriptions/[^/]+/providers/Microsoft\.Network/locations/[^/]+/(operations|operationResults)/([^/?]+)$", path, re.I)
        if m and method == "GET":
            COUNTS["polls"] += 1
            if FAULTS["deny_operations"]:
                raise ArmError(403, "AuthorizationFailed",
                               "The client does not have authorization to perform action "
                               "'Microsoft.Network/locations/operations/read' over scope '%s'" % path)
            op = STATE["ops"].get(m.group(2))
            if op is None:
                raise ArmError(404, "NotFound", "no operation %s" % m.group(2))
            h = {"Retry-After": str(FAULTS["poll_retry_after"])}
            if op["left"] > 0:
                op["left"] -= 1
                if m.group(1).lower() == "operationresults":
                    return 202, None, h
                return 200, {"status": "InProgress"}, h
            finish(op)
            if m.group(1).lower() == "operationresults":
                return 204, None, {}
            return 200, {"status": "Succeeded"}, {}
        return Handler.route(self, method, path, body)


def finish(op):
    done = op.get("done")
    if not done:
        return
    if done[0] == "nsg":
        nsg = STATE["nsgs"].get(done[1])
        if nsg:
            nsg["properties"]["provisioningState"] = "Succeeded"
    elif done[0] == "rule":
        nsg = STATE["nsgs"].get(done[1])
        r = find_rule(nsg, done[2]) if nsg else None
        if r:
            r["properties"]["provisioningState"] = "Succeeded"
    op["done"] = None


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # a client killed mid-request (the kill -9 test) is not the fake's error
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        ThreadingHTTPServer.handle_error(self, request, client_address)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state")
    ap.add_argument("--throttle-every", type=int, default=0)
    ap.add_argument("--retry-after", type=int, default=1)
    ap.add_argument("--fail-after", type=int, default=-1)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--die-after", type=int, default=-1)
    ap.add_argument("--lro-polls", type=int, default=2)
    ap.add_argument("--tamper-next", action="store_true")
    ap.add_argument("--deny-operations", action="store_true")
    ap.add_argument("--permissions", help="JSON list of permission entries (default: the role)")
    ap.add_argument("--permissions-error", help="STATUS:CODE every permissions request answers")
    ap.add_argument("--permissions-page", type=int, default=0)
    ARGS = ap.parse_args()
    FAULTS.update(throttle_every=ARGS.throttle_every, retry_after=ARGS.retry_after,
                  fail_after=ARGS.fail_after, delay_ms=ARGS.delay_ms, die_after=ARGS.die_after,
                  lro_polls=ARGS.lro_polls, tamper_next=ARGS.tamper_next,
                  deny_operations=ARGS.deny_operations, permissions_page=ARGS.permissions_page)
    if ARGS.permissions:
        entries = json.loads(ARGS.permissions)
        check_permissions(entries)
        FAULTS["permissions"] = entries
    if ARGS.permissions_error:
        status, _, code = ARGS.permissions_error.partition(":")
        FAULTS["permissions_error"] = [int(status), code or "AuthorizationFailed"]
    if ARGS.state and os.path.exists(ARGS.state):
        STATE.update(json.load(open(ARGS.state)))
    srv = QuietServer(("127.0.0.1", ARGS.port), OperationsAware)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
