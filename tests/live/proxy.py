"""A counting, fault-injecting HTTP proxy in front of the AWS emulator, for tests/live_aws.rs.

It forwards every request to the upstream unchanged and counts the API actions by name (the
`Action` form field of EC2/IAM/STS query requests), so a test can count the mutating calls an
apply really made, independently of what intentwall reports. Faults, all optional:
  --throttle-every N     answer every Nth request of each caller (access key and region) with 503
                         RequestLimitExceeded (not forwarded)
  --fail-region R --fail-after N
                         after N mutating EC2 calls signed for region R, answer every further
                         mutating call for R with 500 InternalError (not forwarded)
  --delay-mutations MS   sleep before forwarding each mutating call (to kill a run mid-apply)
  --refuse ACTION:CODE   answer every ACTION call with 400 and the EC2 error CODE (not forwarded):
                         what the emulator never says, e.g. DeleteSecurityGroup:DependencyViolation
  --paginate N           cut DescribeSecurityGroups / DescribeSecurityGroupRules answers into
                         pages of at most N items with a NextToken, as EC2 does (the emulator
                         always answers with everything at once)
IAM SimulatePrincipalPolicy, which the emulator does not implement, is answered here in the
API's own XML shape: every action `allowed`, but those named by --deny ACTION,... which are
`implicitDeny`.
GET /__counts returns {"actions": {name: count}, "mutating": n, "pages": answers paginated}.
Prints its port on stdout once listening. Standard library only.
"""
import argparse
import http.client
import http.server
import json
import re
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

READ_PREFIXES = ("Describe", "Get", "List", "Simulate")
THROTTLE = ('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            '<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>'
            '</Error></Errors><RequestID>proxy-throttle</RequestID></Response>')
FAILURE = ('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
           '<Code>InternalError</Code><Message>An internal error has occurred (injected).</Message>'
           '</Error></Errors><RequestID>proxy-fault</RequestID></Response>')

REFUSAL = ('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
           '<Code>{code}</Code><Message>{action} refused (injected).</Message>'
           '</Error></Errors><RequestID>proxy-refusal</RequestID></Response>')

PAGED = {"DescribeSecurityGroups": "securityGroupInfo",
         "DescribeSecurityGroupRules": "securityGroupRuleSet"}


def page(data, list_tag, offset, size):
    """The items [offset, offset+size) of the answer's list, and a nextToken if more follow."""
    ET.register_namespace("", "http://ec2.amazonaws.com/doc/2016-11-15/")
    root = ET.fromstring(data)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    lst = root.find(ns + list_tag)
    if lst is None:
        return data
    items = list(lst)
    for it in items:
        lst.remove(it)
    for it in items[offset:offset + size]:
        lst.append(it)
    for old in root.findall(ns + "nextToken"):
        root.remove(old)
    if offset + size < len(items):
        tok = ET.SubElement(root, ns + "nextToken")
        tok.text = str(offset + size)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def simulate(form, deny):
    """A SimulatePrincipalPolicy answer: one EvaluationResults member per action asked."""
    actions = [v[0] for k, v in sorted(form.items()) if k.startswith("ActionNames.member.")]
    resource = (form.get("ResourceArns.member.1") or ["*"])[0]
    members = "".join(
        f"<member><EvalActionName>{a}</EvalActionName><EvalResourceName>{resource}</EvalResourceName>"
        f"<EvalDecision>{'implicitDeny' if a in deny else 'allowed'}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/></member>"
        for a in actions)
    return ('<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
            f"<EvaluationResults>{members}</EvaluationResults></SimulatePrincipalPolicyResult>"
            "<ResponseMetadata><RequestId>proxy-simulate</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--throttle-every", type=int, default=0)
    ap.add_argument("--fail-region")
    ap.add_argument("--fail-after", type=int, default=-1)
    ap.add_argument("--delay-mutations", type=int, default=0)
    ap.add_argument("--paginate", type=int, default=0)
    ap.add_argument("--deny", default="")
    ap.add_argument("--refuse", default="")
    args = ap.parse_args()
    up = urllib.parse.urlparse(args.upstream)
    lock = threading.Lock()
    state = {"n": {}, "actions": {}, "mutating": 0, "region_mutations": {}, "pages": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, body, ctype="text/xml"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client was killed mid-call (the kill -9 test): nothing to answer

        def do_GET(self):
            if self.path == "/__counts":
                with lock:
                    body = json.dumps({"actions": state["actions"], "mutating": state["mutating"],
                                       "pages": state["pages"], "refused": state.get("refused", 0)})
                return self.reply(200, body, "application/json")
            self.forward(b"")

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.forward(self.rfile.read(n) if n else b"")

        def forward(self, body):
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            action = (form.get("Action") or [""])[0]
            m = re.search(r"Credential=([^/]+)/\d+/([a-z0-9-]+)/", self.headers.get("Authorization", ""))
            caller, region = (m.group(1), m.group(2)) if m else ("", "")
            mutating = bool(action) and not action.startswith(READ_PREFIXES) and action != "AssumeRole"
            with lock:
                # AWS throttles per account and region: count each caller's requests apart,
                # so writers side by side do not throttle each other's retries
                key = (caller, region)
                state["n"][key] = state["n"].get(key, 0) + 1
                nth = state["n"][key]
                throttled = args.throttle_every > 0 and nth % args.throttle_every == 0
                failed = False
                if not throttled and mutating and args.fail_region == region and args.fail_after >= 0:
                    done = state["region_mutations"].get(region, 0)
                    failed = done >= args.fail_after
                if not throttled and not failed and action:
                    state["actions"][action] = state["actions"].get(action, 0) + 1
                    if mutating:
                        state["mutating"] += 1
                        state["region_mutations"][region] = state["region_mutations"].get(region, 0) + 1
            if throttled:
                return self.reply(503, THROTTLE)
            refused_action, _, refused_code = args.refuse.partition(":")
            if action and action == refused_action:
                with lock:
                    state["refused"] = state.get("refused", 0) + 1
                return self.reply(400, REFUSAL.format(code=refused_code, action=action))
            if action == "SimulatePrincipalPolicy":
                return self.reply(200, simulate(form, set(filter(None, args.deny.split(",")))))
            if failed:
                return self.reply(500, FAILURE)
            if mutating and args.delay_mutations:
                time.sleep(args.delay_mutations / 1000)
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            headers["Host"] = f"{up.hostname}:{up.port}"
            conn.request(self.command, self.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            conn.close()
            if args.paginate and r.status == 200 and action in PAGED:
                data = page(data, PAGED[action], int((form.get("NextToken") or ["0"])[0]), args.paginate)
                with lock:
                    state["pages"] += 1
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client was killed mid-call (the kill -9 test): nothing to answer

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
