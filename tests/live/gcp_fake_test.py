#!/usr/bin/env python3
"""The GCP fake's own tests: each validation rule rejects what the Compute API (and Cloud
Resource Manager's testIamPermissions) rejects, with its status and reason, and the behaviour
intentwall relies on (operations, 409, 404, pages, faults, the granted subset) holds. Run: python3 tests/live/gcp_fake_test.py (tests/live_gcp.rs runs it)."""

import json
import os
import sys
import threading
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcp_fake  # noqa: E402

P = "acme-prod-us"
NET = f"https://www.googleapis.com/compute/v1/projects/{P}/global/networks/prod-us"


def rule(**kw):
    r = {
        "name": "iw-us-web-in-1",
        "network": NET,
        "direction": "INGRESS",
        "priority": 1000,
        "sourceRanges": ["10.30.0.0/16"],
        "targetTags": ["web"],
        "allowed": [{"IPProtocol": "tcp", "ports": ["443", "8000-8080"]}],
    }
    r.update(kw)
    return {k: v for k, v in r.items() if v is not None}


class Fake(unittest.TestCase):
    def start(self, *argv):
        args = gcp_fake.parse_args(["--network", f"{P}/prod-us", *argv])
        server, store = gcp_fake.serve(args)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.store = store

    def setUp(self):
        self.start()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def insert(self, body):
        return self.call("POST", f"/compute/v1/projects/{P}/global/firewalls", body)

    def rejected(self, body, code=400, reason="invalid"):
        status, out = self.insert(body)
        self.assertEqual(status, code, out)
        self.assertEqual(out["error"]["code"], code)
        self.assertEqual(out["error"]["errors"][0]["reason"], reason, out)
        self.assertTrue(out["error"]["message"])
        self.assertEqual(self.store.firewalls.get(P, {}), {}, "a rejected insert stored something")

    def wait(self, op):
        for _ in range(10):
            if op["status"] == "DONE":
                return op
            _, op = self.call("GET", f"/compute/v1/projects/{P}/global/operations/{op['name']}")
        self.fail("the operation never finished")

    # ---- one test per validation rule

    def test_accepts_a_valid_rule(self):
        status, op = self.insert(rule())
        self.assertEqual(status, 200, op)

    def test_rejects_a_missing_name(self):
        self.rejected(rule(name=None), reason="required")

    def test_rejects_a_name_that_is_not_rfc1035(self):
        for bad in ["Web", "1web", "web-", "web_1", "a" * 64, ""]:
            self.rejected(rule(name=bad))

    def test_accepts_a_name_of_63_characters(self):
        self.assertEqual(self.insert(rule(name="a" * 63))[0], 200)

    def test_rejects_a_priority_out_of_range(self):
        self.rejected(rule(priority=65536))
        self.rejected(rule(priority=-1))

    def test_rejects_a_priority_of_the_wrong_type(self):
        self.rejected(rule(priority="abc"))
        self.rejected(rule(priority=1.5))

    def test_rejects_a_direction_outside_the_enum(self):
        self.rejected(rule(direction="INBOUND"))
        self.rejected(rule(direction="ingress"))

    def test_rejects_allowed_and_denied_together(self):
        self.rejected(rule(denied=[{"IPProtocol": "tcp"}]))

    def test_rejects_neither_allowed_nor_denied(self):
        self.rejected(rule(allowed=None))
        self.rejected(rule(allowed=[]))

    def test_rejects_an_entry_without_a_protocol(self):
        self.rejected(rule(allowed=[{"ports": ["22"]}]), reason="required")

    def test_rejects_an_unknown_protocol(self):
        self.rejected(rule(allowed=[{"IPProtocol": "tcpx"}]))
        self.rejected(rule(allowed=[{"IPProtocol": "256"}]))

    def test_rejects_ports_on_a_protocol_without_ports(self):
        self.rejected(rule(allowed=[{"IPProtocol": "icmp", "ports": ["1"]}]))

    def test_rejects_bad_ports(self):
        for bad in ["65536", "80-79", "http", "1-2-3"]:
            self.rejected(rule(allowed=[{"IPProtocol": "tcp", "ports": [bad]}]))

    def test_rejects_invalid_ip_ranges(self):
        self.rejected(rule(sourceRanges=["10.0.0.0/33"]))
        self.rejected(rule(sourceRanges=["not-a-cidr"]))
        self.rejected(rule(direction="EGRESS", sourceRanges=None, targetTags=None, destinationRanges=["2001:db8::/129"]))

    def test_accepts_ipv6_ranges(self):
        self.assertEqual(self.insert(rule(sourceRanges=["2001:db8::/32"]))[0], 200)

    def test_rejects_source_tags_on_egress(self):
        self.rejected(rule(direction="EGRESS", sourceRanges=None, sourceTags=["web"]))

    def test_rejects_target_service_accounts_with_tags(self):
        self.rejected(rule(targetServiceAccounts=["db@acme-prod-us.iam.gserviceaccount.com"]))
        self.rejected(rule(targetTags=None, sourceTags=["web"], targetServiceAccounts=["db@acme-prod-us.iam.gserviceaccount.com"]))

    def test_rejects_source_service_accounts_with_tags(self):
        self.rejected(rule(sourceServiceAccounts=["db@acme-prod-us.iam.gserviceaccount.com"]))

    def test_rejects_a_service_account_that_is_not_an_email(self):
        self.rejected(rule(targetTags=None, targetServiceAccounts=["db"]))

    def test_rejects_a_bad_tag(self):
        self.rejected(rule(targetTags=["Web Tier"]))

    def test_rejects_unknown_fields(self):
        self.rejected(rule(sourceRange=["10.0.0.0/8"]))

    def test_rejects_wrong_types(self):
        self.rejected(rule(sourceRanges="10.0.0.0/8"))
        self.rejected(rule(disabled="no"))
        self.rejected(rule(allowed={"IPProtocol": "tcp"}))

    def test_rejects_log_metadata_without_logging(self):
        self.rejected(rule(logConfig={"enable": False, "metadata": "INCLUDE_ALL_METADATA"}))
        self.rejected(rule(logConfig={"enable": True, "metadata": "SOME"}))

    def test_rejects_a_network_that_does_not_exist(self):
        self.rejected(rule(network="global/networks/nope"), code=404, reason="notFound")
        self.rejected(rule(network="projects//x"), code=400)

    # ---- behaviour

    def test_insert_is_an_operation_that_finishes_and_then_the_rule_exists(self):
        _, op = self.insert(rule())
        self.assertRegex(op["id"], r"^\d+$", "operation ids are uint64 decimal strings")
        self.assertEqual(op["status"], "RUNNING")
        self.assertTrue(op["targetLink"].endswith("/global/firewalls/iw-us-web-in-1"))
        self.assertTrue(op["selfLink"].endswith("/global/operations/" + op["name"]))
        self.assertEqual(self.call("GET", f"/compute/v1/projects/{P}/global/firewalls/iw-us-web-in-1")[0], 404)
        polls = 0
        while op["status"] != "DONE":
            polls += 1
            _, op = self.call("GET", f"/compute/v1/projects/{P}/global/operations/{op['name']}")
        self.assertGreaterEqual(polls, 2, "RUNNING for a couple of polls")
        status, fw = self.call("GET", f"/compute/v1/projects/{P}/global/firewalls/iw-us-web-in-1")
        self.assertEqual(status, 200)
        self.assertRegex(fw["id"], r"^\d+$")
        self.assertEqual(fw["kind"], "compute#firewall")
        self.assertFalse(fw["disabled"])

    def test_a_duplicate_name_is_409_already_exists(self):
        self.wait(self.insert(rule())[1])
        status, out = self.insert(rule(priority=10))
        self.assertEqual(status, 409)
        self.assertEqual(out["error"]["errors"][0]["reason"], "alreadyExists")

    def test_get_patch_and_delete_of_a_missing_rule_are_404(self):
        base = f"/compute/v1/projects/{P}/global/firewalls/nope"
        for method, body in (("GET", None), ("DELETE", None), ("PATCH", rule(name="nope"))):
            status, out = self.call(method, base, body)
            self.assertEqual(status, 404, method)
            self.assertEqual(out["error"]["errors"][0]["reason"], "notFound")

    def test_patch_merges_and_put_replaces(self):
        self.wait(self.insert(rule())[1])
        path = f"/compute/v1/projects/{P}/global/firewalls/iw-us-web-in-1"
        self.wait(self.call("PATCH", path, {"name": "iw-us-web-in-1", "priority": 900})[1])
        fw = self.call("GET", path)[1]
        self.assertEqual((fw["priority"], fw["targetTags"]), (900, ["web"]))
        body = rule(targetTags=None)
        self.wait(self.call("PUT", path, body)[1])
        fw = self.call("GET", path)[1]
        self.assertNotIn("targetTags", fw)
        self.assertEqual(fw["priority"], 1000)

    def test_patch_cannot_change_direction_or_name(self):
        self.wait(self.insert(rule())[1])
        path = f"/compute/v1/projects/{P}/global/firewalls/iw-us-web-in-1"
        status, _ = self.call("PATCH", path, {"name": "iw-us-web-in-1", "direction": "EGRESS"})
        self.assertEqual(status, 400)
        status, _ = self.call("PATCH", path, {"name": "other"})
        self.assertEqual(status, 400)

    def test_a_patch_that_breaks_the_rule_is_rejected(self):
        self.wait(self.insert(rule())[1])
        path = f"/compute/v1/projects/{P}/global/firewalls/iw-us-web-in-1"
        status, _ = self.call("PATCH", path, {"name": "iw-us-web-in-1", "denied": [{"IPProtocol": "all"}]})
        self.assertEqual(status, 400)

    def test_lists_are_paged_and_filtered(self):
        self.start("--network", f"{P}/prod-us", "--network", f"{P}/other", "--page-size", "2")
        for i in range(5):
            self.wait(self.insert(rule(name=f"r{i}"))[1])
        self.wait(self.insert(rule(name="elsewhere", network="global/networks/other"))[1])
        flt = urllib.request.quote(f'network = "{NET}"')
        names, token, pages = [], None, 0
        while True:
            q = f"?filter={flt}" + (f"&pageToken={token}" if token else "")
            status, page = self.call("GET", f"/compute/v1/projects/{P}/global/firewalls{q}")
            self.assertEqual(status, 200, page)
            pages += 1
            names += [f["name"] for f in page.get("items", [])]
            token = page.get("nextPageToken")
            if not token:
                break
        self.assertEqual(names, [f"r{i}" for i in range(5)])
        self.assertEqual(pages, 3)
        status, _ = self.call("GET", f"/compute/v1/projects/{P}/global/firewalls?pageToken=garbage")
        self.assertEqual(status, 400)
        status, _ = self.call("GET", f"/compute/v1/projects/{P}/global/firewalls?filter=bogus%20filter")
        self.assertEqual(status, 400)

    def test_throttling_and_failures_are_google_errors_and_not_counted(self):
        self.start("--network", f"{P}/prod-us", "--throttle-every", "2", "--fail-after", "1")
        self.assertEqual(self.insert(rule())[0], 200)
        status, out = self.insert(rule(name="b"))
        self.assertEqual((status, out["error"]["errors"][0]["reason"]), (429, "rateLimitExceeded"))
        status, out = self.insert(rule(name="c"))
        self.assertEqual((status, out["error"]["errors"][0]["reason"]), (503, "backendError"))
        self.assertEqual(self.call("GET", "/__counts")[1]["mutating"], 1)

    def test_throttling_counts_each_projects_requests_apart(self):
        self.start("--network", f"{P}/prod-us", "--network", "other-project/prod-eu",
                   "--throttle-every", "2")
        lst = lambda p: self.call("GET", f"/compute/v1/projects/{p}/global/firewalls")[0]
        # another project's request in between does not move this project's count
        self.assertEqual([lst(P), lst("other-project"), lst(P), lst("other-project")],
                         [200, 200, 429, 429])

    def test_a_lost_mutation_is_done_and_changes_nothing(self):
        self.start("--network", f"{P}/prod-us", "--lose-mutation", "2")
        self.assertEqual(self.wait(self.insert(rule(name="kept"))[1]).get("error"), None)
        op = self.wait(self.insert(rule(name="lost"))[1])
        self.assertEqual((op["status"], op.get("error")), ("DONE", None))
        self.assertEqual(sorted(self.store.firewalls.get(P, {})), ["kept"])
        self.assertEqual(self.store.counts["lost"], 1)
        # the name is free: inserting it again works
        self.assertEqual(self.wait(self.insert(rule(name="lost"))[1]).get("error"), None)
        self.assertEqual(sorted(self.store.firewalls.get(P, {})), ["kept", "lost"])

    def test_mutations_are_counted_reads_are_not(self):
        self.wait(self.insert(rule())[1])
        self.call("GET", f"/compute/v1/projects/{P}/global/firewalls")
        counts = self.call("GET", "/__counts")[1]
        self.assertEqual(counts["mutating"], 1)
        self.assertEqual(counts["methods"]["firewalls.insert"], 1)

    # ---- Cloud Resource Manager: projects.testIamPermissions

    IAM = f"/v3/projects/{P}:testIamPermissions?%24alt=json%3Benum-encoding%3Dint"
    ASK = ["compute.firewalls.create", "compute.firewalls.list", "compute.networks.updatePolicy"]

    def iam(self, body, project=P):
        return self.call("POST", f"/v3/projects/{project}:testIamPermissions", body)

    def iam_rejected(self, body, field="permissions"):
        status, out = self.iam(body)
        self.assertEqual(status, 400, out)
        err = out["error"]
        self.assertEqual((err["code"], err["status"]), (400, "INVALID_ARGUMENT"), out)
        self.assertTrue(err["message"])
        violation = err["details"][0]
        self.assertEqual(violation["@type"], "type.googleapis.com/google.rpc.BadRequest")
        self.assertEqual(violation["fieldViolations"][0]["field"], field, out)
        self.assertEqual(self.store.counts["iam"], [], "a rejected request was answered")

    def test_iam_grants_everything_asked_by_default_in_the_order_asked(self):
        status, out = self.call("POST", self.IAM, {"permissions": self.ASK})
        self.assertEqual((status, out), (200, {"permissions": self.ASK}))
        self.assertEqual(self.store.counts["iam"], [{"project": P, "permissions": self.ASK}])
        counts = self.call("GET", "/__counts")[1]
        self.assertEqual(counts["methods"]["projects.testIamPermissions"], 1)
        self.assertEqual(counts["mutating"], 0, "testIamPermissions is a read")

    def test_iam_leaves_out_withheld_permissions(self):
        self.start("--network", f"{P}/prod-us", "--network", "acme-prod-eu/prod-eu",
                   "--withhold", "compute.firewalls.create",
                   "--withhold", "acme-prod-eu/compute.networks.updatePolicy")
        self.assertEqual(self.iam({"permissions": self.ASK})[1],
                         {"permissions": ["compute.firewalls.list", "compute.networks.updatePolicy"]})
        # a withholding scoped to a project applies there only
        self.assertEqual(self.iam({"permissions": self.ASK}, project="acme-prod-eu")[1],
                         {"permissions": ["compute.firewalls.list"]})

    def test_iam_answers_an_empty_object_when_nothing_is_granted(self):
        self.start("--network", f"{P}/prod-us", "--withhold", "compute.firewalls.create")
        status, out = self.iam({"permissions": ["compute.firewalls.create"]})
        self.assertEqual((status, out), (200, {}), "proto3 JSON leaves an empty list out")

    def test_iam_withholding_can_be_changed_while_running(self):
        self.call("POST", "/__admin/faults", {"withhold": ["compute.firewalls.list"]})
        self.assertEqual(self.iam({"permissions": self.ASK})[1],
                         {"permissions": ["compute.firewalls.create", "compute.networks.updatePolicy"]})

    def test_iam_rejects_a_missing_or_empty_permission_list(self):
        self.iam_rejected({})
        self.iam_rejected({"permissions": []})
        self.iam_rejected(None)

    def test_iam_rejects_permissions_that_are_not_a_list_of_strings(self):
        self.iam_rejected({"permissions": "compute.firewalls.list"})
        self.iam_rejected({"permissions": [7]}, field="permissions[0]")
        self.iam_rejected({"permissions": [None]}, field="permissions[0]")

    def test_iam_rejects_unknown_fields(self):
        # the resource is the path's: the discovery schema of the body has `permissions` only
        self.iam_rejected({"permissions": self.ASK, "resource": f"projects/{P}"}, field="resource")

    def test_iam_rejects_a_body_that_is_not_an_object(self):
        self.iam_rejected(["compute.firewalls.list"], field="")

    def test_iam_rejects_wildcards(self):
        self.iam_rejected({"permissions": ["compute.*"]})
        self.iam_rejected({"permissions": ["*"]})

    def test_iam_rejects_names_that_are_not_permissions(self):
        for bad in ["compute", "compute.firewalls", "Compute.firewalls.list", "compute.firewalls.list.x", ""]:
            self.iam_rejected({"permissions": [bad]})

    def test_iam_rejects_more_than_100_permissions(self):
        many = [f"compute.firewalls.verb{i}" for i in range(101)]
        self.iam_rejected({"permissions": many})
        self.assertEqual(self.iam({"permissions": many[:100]})[0], 200)

    def test_iam_on_an_unknown_project_is_403(self):
        status, out = self.iam({"permissions": self.ASK}, project="no-such-project")
        self.assertEqual(status, 403, out)
        self.assertEqual(out["error"]["status"], "PERMISSION_DENIED")

    def test_iam_only_answers_post_on_the_custom_method(self):
        self.assertEqual(self.call("GET", f"/v3/projects/{P}:testIamPermissions")[0], 404)
        self.assertEqual(self.call("POST", f"/v3/projects/{P}/x:testIamPermissions", {"permissions": self.ASK})[0], 404)

    def test_iam_fail_answers_the_status_asked_for(self):
        for code, status in ((403, "PERMISSION_DENIED"), (404, "NOT_FOUND"), (503, "UNAVAILABLE")):
            self.start("--network", f"{P}/prod-us", "--iam-fail", str(code))
            got, out = self.iam({"permissions": self.ASK})
            self.assertEqual((got, out["error"]["status"]), (code, status), out)

    def test_iam_throttling_is_a_one_platform_error(self):
        self.start("--network", f"{P}/prod-us", "--throttle-every", "1")
        status, out = self.iam({"permissions": self.ASK})
        self.assertEqual((status, out["error"]["status"]), (429, "RESOURCE_EXHAUSTED"))


class InFlight(unittest.TestCase):
    """Writers side by side (not a subclass of Fake: its tests would run again, delayed)."""

    start, call, insert = Fake.start, Fake.call, Fake.insert

    def setUp(self):
        self.start("--delay-mutations", "300")

    def test_most_in_flight_counts_mutations_that_overlap(self):
        self.insert(rule(name="first"))
        self.assertEqual(self.store.counts["most_in_flight"], 1, "one at a time")
        threads = [threading.Thread(target=self.insert, args=(rule(name=f"side-{i}"),)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(self.store.counts["most_in_flight"], 3)
        self.assertEqual(self.store.in_flight, 0)


if __name__ == "__main__":
    unittest.main()
