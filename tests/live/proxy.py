"""A counting, fault-injecting HTTP proxy in front of the AWS emulator, for tests/live_aws.rs.

It forwards every request to the upstream unchanged and counts the API actions by name (the
`Action` form field of EC2/IAM/STS query requests), so a test can count the mutating calls an
apply really made, independently of what intentwall reports. Faults, all optional:
  --throttle-every N     answer every Nth request with 503 RequestLimitExceeded (not forwarded)
  --fail-region R --fail-after N
                         after N mutating EC2 calls signed for region R, answer every further
                         mutating call for R with 500 InternalError (not forwarded)
  --delay-mutations MS   sleep before forwarding each mutating call (to kill a run mid-apply)
GET /__counts returns {"actions": {name: count}, "mutating": n}.
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

READ_PREFIXES = ("Describe", "Get", "List", "Simulate")
THROTTLE = ('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            '<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>'
            '</Error></Errors><RequestID>proxy-throttle</RequestID></Response>')
FAILURE = ('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
           '<Code>InternalError</Code><Message>An internal error has occurred (injected).</Message>'
           '</Error></Errors><RequestID>proxy-fault</RequestID></Response>')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--throttle-every", type=int, default=0)
    ap.add_argument("--fail-region")
    ap.add_argument("--fail-after", type=int, default=-1)
    ap.add_argument("--delay-mutations", type=int, default=0)
    args = ap.parse_args()
    up = urllib.parse.urlparse(args.upstream)
    lock = threading.Lock()
    state = {"n": 0, "actions": {}, "mutating": 0, "region_mutations": {}}

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
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/__counts":
                with lock:
                    body = json.dumps({"actions": state["actions"], "mutating": state["mutating"]})
                return self.reply(200, body, "application/json")
            self.forward(b"")

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.forward(self.rfile.read(n) if n else b"")

        def forward(self, body):
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            action = (form.get("Action") or [""])[0]
            m = re.search(r"Credential=[^/]+/\d+/([a-z0-9-]+)/", self.headers.get("Authorization", ""))
            region = m.group(1) if m else ""
            mutating = bool(action) and not action.startswith(READ_PREFIXES) and action != "AssumeRole"
            with lock:
                state["n"] += 1
                nth = state["n"]
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
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
