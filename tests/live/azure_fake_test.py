#!/usr/bin/env python3
"""The ARM fake's own tests: each validation rule rejects what the real API rejects (with the
status and error code the fake answers), and the ARM behaviours the live tests rely on (etags,
long-running operations, default rules, faults) hold. Run: python3 tests/live/azure_fake_test.py
"""

import json
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SUB = "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5"
RG = "rg-t"
BASE = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network" % (SUB, RG)
API = "?api-version=2024-03-01"


class Fake:
    def __init__(self, *args):
        self.p = subprocess.Popen([sys.executable, os.path.join(HERE, "azure_fake.py"), *args],
                                  stdout=subprocess.PIPE)
        self.url = "http://127.0.0.1:%s" % self.p.stdout.readline().decode().strip()

    def call(self, method, path, body=None, headers=None, query=API):
        h = {"Authorization": "Bearer t", "Content-Type": "application/json"}
        h.update(headers or {})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path + query, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None), dict(r.headers)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None), dict(e.headers)

    def stop(self):
        self.p.kill()
        self.p.wait()
        self.p.stdout.close()


def rule(**over):
    p = {"protocol": "Tcp", "access": "Allow", "priority": 200, "direction": "Inbound",
         "sourceAddressPrefix": "10.0.0.0/24", "sourcePortRange": "*",
         "destinationAddressPrefix": "*", "destinationPortRange": "443"}
    for k, v in over.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return {"properties": p}


class FakeTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Fake("--lro-polls", "2")
        cls.f.call("POST", "/__rg", {"subscription": SUB, "resource_group": RG, "location": "eastus"}, query="")
        s, _, _ = cls.f.call("PUT", BASE + "/networkSecurityGroups/nsg-a", {"location": "eastus"})
        assert s == 201, s

    @classmethod
    def tearDownClass(cls):
        cls.f.stop()

    def put_rule(self, name, body, headers=None):
        return self.f.call("PUT", BASE + "/networkSecurityGroups/nsg-a/securityRules/" + name, body, headers)

    def rejects(self, body, code, status=400, name="r-bad"):
        s, out, _ = self.put_rule(name, body)
        self.assertEqual(s, status, out)
        self.assertEqual(out["error"]["code"], code, out)
        self.assertIn("message", out["error"])
        # nothing was stored
        s, _, _ = self.f.call("GET", BASE + "/networkSecurityGroups/nsg-a/securityRules/" + name)
        self.assertEqual(s, 404)

    # ---- schema: required fields, types, enums, ranges
    def test_required_fields(self):
        for field in ("protocol", "access", "priority", "direction"):
            self.rejects(rule(**{field: None}), "InvalidRequestFormat")

    def test_properties_required(self):
        self.rejects({"name": "x"}, "InvalidRequestFormat")

    def test_priority_must_be_an_integer(self):
        self.rejects(rule(priority="200"), "InvalidRequestFormat")
        self.rejects(rule(priority=True), "InvalidRequestFormat")

    def test_priority_range(self):
        self.rejects(rule(priority=99), "SecurityRuleInvalidPriority")
        self.rejects(rule(priority=4097), "SecurityRuleInvalidPriority")

    def test_enums(self):
        self.rejects(rule(protocol="TCPX"), "InvalidRequestFormat")
        self.rejects(rule(protocol="tcp"), "InvalidRequestFormat")
        self.rejects(rule(access="Maybe"), "InvalidRequestFormat")
        self.rejects(rule(direction="Sideways"), "InvalidRequestFormat")

    def test_string_and_array_types(self):
        self.rejects(rule(sourceAddressPrefix=None, sourceAddressPrefixes="10.0.0.0/8"), "InvalidRequestFormat")
        self.rejects(rule(destinationPortRange=443), "InvalidRequestFormat")
        self.rejects(rule(description=7), "InvalidRequestFormat")

    def test_description_length(self):
        self.rejects(rule(description="x" * 141), "InvalidRequestFormat")

    # ---- mutually exclusive and missing fields
    def test_prefix_and_prefixes_are_exclusive(self):
        self.rejects(rule(sourceAddressPrefixes=["10.1.0.0/16", "10.2.0.0/16"]), "SecurityRuleConflictingProperties")

    def test_prefix_and_asgs_are_exclusive(self):
        self.rejects(rule(destinationApplicationSecurityGroups=[{"id": BASE + "/applicationSecurityGroups/x"}]),
                     "SecurityRuleConflictingProperties")

    def test_port_range_and_ranges_are_exclusive(self):
        self.rejects(rule(destinationPortRanges=["80", "443"]), "SecurityRuleConflictingProperties")

    def test_a_side_is_required(self):
        self.rejects(rule(sourceAddressPrefix=None), "SecurityRuleParameterMissing")
        self.rejects(rule(destinationPortRange=None), "SecurityRuleParameterMissing")

    # ---- values
    def test_port_syntax_and_range(self):
        for bad in ("70000", "90-80", "http", "1-2-3"):
            self.rejects(rule(destinationPortRange=bad), "SecurityRuleInvalidPortRange")

    def test_prefix_syntax(self):
        for bad in ("10.0.0.300/24", "10.0.0.1/24", "not a cidr"):
            self.rejects(rule(sourceAddressPrefix=bad), "SecurityRuleInvalidAddressPrefix")

    def test_no_service_tags_in_augmented_lists(self):
        self.rejects(rule(sourceAddressPrefix=None, sourceAddressPrefixes=["VirtualNetwork", "10.0.0.0/8"]),
                     "SecurityRuleInvalidAddressPrefix")

    def test_asg_must_exist_in_the_same_location(self):
        ref = [{"id": BASE + "/applicationSecurityGroups/iw-missing"}]
        self.rejects(rule(destinationAddressPrefix=None, destinationApplicationSecurityGroups=ref),
                     "InvalidResourceReference")
        s, _, _ = self.f.call("PUT", BASE + "/applicationSecurityGroups/iw-far", {"location": "westeurope"})
        self.assertEqual(s, 201)
        far = [{"id": BASE + "/applicationSecurityGroups/iw-far"}]
        self.rejects(rule(destinationAddressPrefix=None, destinationApplicationSecurityGroups=far),
                     "ApplicationSecurityGroupNotInSameLocation")

    def test_at_most_ten_asgs_a_side(self):
        ids = [{"id": BASE + "/applicationSecurityGroups/a%d" % i} for i in range(11)]
        self.rejects(rule(destinationAddressPrefix=None, destinationApplicationSecurityGroups=ids),
                     "SecurityRuleTooManyApplicationSecurityGroups")

    def test_rule_name(self):
        self.rejects(rule(), "InvalidResourceName", name="-starts-badly")

    def test_api_version_and_token(self):
        s, out, _ = self.f.call("GET", BASE + "/networkSecurityGroups", query="?api-version=2020-01-01")
        self.assertEqual((s, out["error"]["code"]), (400, "InvalidApiVersionParameter"))
        s, out, _ = self.f.call("GET", BASE + "/networkSecurityGroups", headers={"Authorization": ""})
        self.assertEqual((s, out["error"]["code"]), (401, "AuthenticationFailed"))

    def test_nsg_needs_a_location(self):
        s, out, _ = self.f.call("PUT", BASE + "/networkSecurityGroups/nsg-x", {"properties": {}})
        self.assertEqual((s, out["error"]["code"]), (400, "InvalidRequestFormat"))

    # ---- ARM behaviour
    def test_same_priority_and_direction_conflict(self):
        s, _, _ = self.put_rule("r-one", rule(priority=300))
        self.assertEqual(s, 201)
        self.rejects(rule(priority=300), "SecurityRuleConflict", name="r-two")
        # the other direction may share the number
        s, _, _ = self.put_rule("r-out", rule(priority=300, direction="Outbound"))
        self.assertEqual(s, 201)

    def test_etags_and_conditions(self):
        s, created, _ = self.put_rule("r-etag", rule(priority=310), {"If-None-Match": "*"})
        self.assertEqual(s, 201)
        s, out, _ = self.put_rule("r-etag", rule(priority=310), {"If-None-Match": "*"})
        self.assertEqual((s, out["error"]["code"]), (412, "PreconditionFailed"))
        s, out, _ = self.put_rule("r-etag", rule(priority=311), {"If-Match": 'W/"stale"'})
        self.assertEqual((s, out["error"]["code"]), (412, "PreconditionFailed"))
        s, updated, _ = self.put_rule("r-etag", rule(priority=311), {"If-Match": created["etag"]})
        self.assertEqual(s, 200)
        self.assertNotEqual(updated["etag"], created["etag"])
        s, out, _ = self.f.call("DELETE", BASE + "/networkSecurityGroups/nsg-a/securityRules/r-etag",
                                headers={"If-Match": created["etag"]})
        self.assertEqual(s, 412)

    def test_long_running_operations(self):
        s, out, h = self.put_rule("r-lro", rule(priority=320))
        self.assertEqual(s, 201)
        self.assertEqual(out["properties"]["provisioningState"], "Updating")
        op = h["Azure-AsyncOperation"]
        path = op.split("127.0.0.1")[1].split(":", 1)[1]
        path = path[path.index("/"):]
        p, q = path.split("?")
        states = [self.f.call("GET", p, query="?" + q)[1]["status"] for _ in range(3)]
        self.assertEqual(states, ["InProgress", "InProgress", "Succeeded"])
        s, got, _ = self.f.call("GET", BASE + "/networkSecurityGroups/nsg-a/securityRules/r-lro")
        self.assertEqual(got["properties"]["provisioningState"], "Succeeded")
        s, _, h = self.f.call("DELETE", BASE + "/networkSecurityGroups/nsg-a/securityRules/r-lro")
        self.assertEqual(s, 202)
        self.assertIn("Azure-AsyncOperation", h)
        s, _, _ = self.f.call("DELETE", BASE + "/networkSecurityGroups/nsg-a/securityRules/r-lro")
        self.assertEqual(s, 204)

    def test_default_rules_and_not_found(self):
        s, out, _ = self.f.call("GET", BASE + "/networkSecurityGroups/nsg-a/defaultSecurityRules")
        self.assertEqual(sorted(r["name"] for r in out["value"]),
                         sorted(["AllowVnetInBound", "AllowAzureLoadBalancerInBound", "DenyAllInBound",
                                 "AllowVnetOutBound", "AllowInternetOutBound", "DenyAllOutBound"]))
        s, out, _ = self.f.call("GET", BASE + "/networkSecurityGroups/nope")
        self.assertEqual((s, out["error"]["code"]), (404, "ResourceNotFound"))
        s, out, _ = self.f.call("GET", BASE.replace(RG, "rg-none") + "/networkSecurityGroups")
        self.assertEqual((s, out["error"]["code"]), (404, "ResourceGroupNotFound"))

    def test_nsg_put_is_authoritative_for_its_rules(self):
        s, _, _ = self.f.call("PUT", BASE + "/networkSecurityGroups/nsg-b", {
            "location": "eastus", "properties": {"securityRules": [dict(rule(priority=100), name="k")]}})
        self.assertEqual(s, 201)
        s, _, _ = self.f.call("PUT", BASE + "/networkSecurityGroups/nsg-b", {"location": "eastus"})
        self.assertEqual(s, 200)
        s, out, _ = self.f.call("GET", BASE + "/networkSecurityGroups/nsg-b/securityRules")
        self.assertEqual(out["value"], [])


class FaultTests(unittest.TestCase):
    def test_a_tampered_write_fails_its_precondition(self):
        f = Fake("--tamper-next")
        try:
            f.call("POST", "/__rg", {"subscription": SUB, "resource_group": RG, "location": "eastus"}, query="")
            f.call("PUT", BASE + "/networkSecurityGroups/n", {"location": "eastus"})
            s, out, _ = f.call("PUT", BASE + "/networkSecurityGroups/n/securityRules/r", rule(), {"If-None-Match": "*"})
            self.assertEqual((s, out["error"]["code"]), (412, "PreconditionFailed"))
            s, got, _ = f.call("GET", BASE + "/networkSecurityGroups/n/securityRules/r")
            self.assertEqual(got["properties"]["description"], "made concurrently")
            # only the next write
            s, _, _ = f.call("PUT", BASE + "/networkSecurityGroups/n/securityRules/r", rule(), {"If-Match": got["etag"]})
            self.assertEqual(s, 200)
        finally:
            f.stop()

    def test_throttling_counts_each_subscriptions_requests_apart(self):
        other = "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
        f = Fake("--throttle-every", "2", "--retry-after", "0")
        try:
            for sub in (SUB, other):
                f.call("POST", "/__rg", {"subscription": sub, "resource_group": RG, "location": "eastus"}, query="")
            base = lambda sub: "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/networkSecurityGroups" % (sub, RG)
            got = [f.call("GET", base(s))[0] for s in (SUB, other, SUB, other)]
            # another subscription's request in between does not move this one's count
            self.assertEqual(got, [200, 200, 429, 429])
        finally:
            f.stop()

    def test_throttling_counts_early_retries(self):
        f = Fake("--throttle-every", "2", "--retry-after", "1")
        try:
            f.call("POST", "/__rg", {"subscription": SUB, "resource_group": RG, "location": "eastus"}, query="")
            s1, _, _ = f.call("GET", BASE + "/networkSecurityGroups")
            s2, out, h = f.call("GET", BASE + "/networkSecurityGroups")
            self.assertEqual((s1, s2), (200, 429))
            self.assertEqual(out["error"]["code"], "TooManyRequests")
            self.assertEqual(h["Retry-After"], "1")
            f.call("GET", BASE + "/networkSecurityGroups")  # too early
            time.sleep(1.1)
            f.call("GET", BASE + "/networkSecurityGroups")  # 429 again (every 2nd), not early
            counts = f.call("GET", "/__counts", query="")[1]
            self.assertEqual(counts["early"], 1)
        finally:
            f.stop()

    def test_failing_after_n_writes_and_state_surviving_a_restart(self):
        state = os.path.join(os.environ.get("TMPDIR", "/tmp"), "azure-fake-test-%d.json" % os.getpid())
        f = Fake("--fail-after", "1", "--state", state)
        try:
            f.call("POST", "/__rg", {"subscription": SUB, "resource_group": RG, "location": "eastus"}, query="")
            self.assertEqual(f.call("PUT", BASE + "/networkSecurityGroups/n", {"location": "eastus"})[0], 201)
            s, out, _ = f.call("PUT", BASE + "/networkSecurityGroups/m", {"location": "eastus"})
            self.assertEqual((s, out["error"]["code"]), (500, "InternalServerError"))
            self.assertEqual(f.call("GET", "/__counts", query="")[1]["mutating"], 1)
        finally:
            f.stop()
        g = Fake("--state", state)
        try:
            self.assertEqual(g.call("GET", BASE + "/networkSecurityGroups/n")[0], 200)
        finally:
            g.stop()
            os.remove(state)


PERMS = "/subscriptions/%s/resourcegroups/%s/providers/Microsoft.Authorization/permissions" % (SUB, RG)
AUTH_API = "?api-version=2022-04-01"


class PermissionsTests(unittest.TestCase):
    """Permissions_ListForResourceGroup, the call of `apply --preflight`."""

    def setUp(self):
        self.f = Fake()
        self.f.call("POST", "/__rg", {"subscription": SUB, "resource_group": RG, "location": "eastus"}, query="")

    def tearDown(self):
        self.f.stop()

    def perms(self, path=PERMS, query=AUTH_API):
        return self.f.call("GET", path, query=query)

    def test_default_is_the_role_in_one_entry(self):
        s, out, _ = self.perms()
        self.assertEqual(s, 200, out)
        self.assertNotIn("nextLink", out)
        self.assertEqual(len(out["value"]), 1)
        e = out["value"][0]
        self.assertEqual(sorted(e), ["actions", "dataActions", "notActions", "notDataActions"])
        self.assertIn("Microsoft.Network/networkSecurityGroups/securityRules/write", e["actions"])
        self.assertIn("Microsoft.Authorization/permissions/read", e["actions"])
        self.assertEqual((e["notActions"], e["dataActions"], e["notDataActions"]), ([], [], []))
        self.assertEqual(self.f.call("GET", "/__counts", query="")[1]["permissions"], 1)

    def test_path_is_case_insensitive_and_versioned_apart_from_network(self):
        s, _, _ = self.perms(PERMS.replace("resourcegroups", "resourceGroups").replace("Authorization", "authorization"))
        self.assertEqual(s, 200)
        # the network API's version is not this API's, and the other way round
        s, out, _ = self.perms(query=API)
        self.assertEqual((s, out["error"]["code"]), (400, "InvalidApiVersionParameter"))
        s, out, _ = self.f.call("GET", BASE + "/networkSecurityGroups", query=AUTH_API)
        self.assertEqual((s, out["error"]["code"]), (400, "InvalidApiVersionParameter"))
        s, out, _ = self.perms(query="")
        self.assertEqual((s, out["error"]["code"]), (400, "InvalidApiVersionParameter"))
        s, out, _ = self.f.call("GET", PERMS, headers={"Authorization": ""}, query=AUTH_API)
        self.assertEqual((s, out["error"]["code"]), (401, "AuthenticationFailed"))
        s, out, _ = self.f.call("PUT", PERMS, {"actions": ["*"]}, query=AUTH_API)
        self.assertEqual(s, 405)
        # nothing of this is a write
        self.assertEqual(self.f.call("GET", "/__counts", query="")[1]["mutating"], 0)

    def test_missing_resource_group(self):
        s, out, _ = self.perms(PERMS.replace(RG, "rg-none"))
        self.assertEqual((s, out["error"]["code"]), (404, "ResourceGroupNotFound"))

    def test_configured_entries_and_pages(self):
        entries = [{"actions": ["Microsoft.Network/*"], "notActions": ["*/delete"]},
                   {"actions": ["*/read"]},
                   {"actions": ["Microsoft.Network/networkSecurityGroups/securityRules/delete"]}]
        s, _, _ = self.f.call("POST", "/__faults", {"permissions": entries, "permissions_page": 2}, query="")
        self.assertEqual(s, 200)
        s, first, _ = self.perms()
        self.assertEqual(s, 200)
        self.assertEqual([e["actions"] for e in first["value"]], [["Microsoft.Network/*"], ["*/read"]])
        self.assertEqual(first["value"][1]["notActions"], [])  # absent fields are empty lists
        link = first["nextLink"]
        self.assertTrue(link.startswith(self.f.url + PERMS), link)
        self.assertIn("api-version=2022-04-01", link)
        s, second, _ = self.f.call("GET", link[len(self.f.url):], query="")
        self.assertEqual(s, 200)
        self.assertEqual(len(second["value"]), 1)
        self.assertNotIn("nextLink", second)
        s, out, _ = self.perms(query=AUTH_API + "&$skiptoken=x")
        self.assertEqual((s, out["error"]["code"]), (400, "InvalidSkipToken"))
        # null restores the role
        self.f.call("POST", "/__faults", {"permissions": None, "permissions_page": 0}, query="")
        self.assertIn("Microsoft.Authorization/permissions/read", self.perms()[1]["value"][0]["actions"])

    def test_configured_entries_must_be_what_the_api_could_answer(self):
        for bad in ({"actions": "*"}, [{"actions": [1]}], [{"actions": ["*"], "condition": "x"}], ["*"]):
            s, out, _ = self.f.call("POST", "/__faults", {"permissions": bad}, query="")
            self.assertEqual((s, out["error"]["code"]), (400, "InvalidRequestFormat"), bad)
        self.assertEqual(len(self.perms()[1]["value"]), 1)

    def test_injected_error(self):
        self.f.call("POST", "/__faults", {"permissions_error": [403, "AuthorizationFailed"]}, query="")
        s, out, h = self.perms()
        self.assertEqual((s, out["error"]["code"]), (403, "AuthorizationFailed"))
        self.assertIn("Microsoft.Authorization/permissions/read", out["error"]["message"])
        self.assertEqual(h["x-ms-error-code"], "AuthorizationFailed")
        # the network API is not affected
        self.assertEqual(self.f.call("GET", BASE + "/networkSecurityGroups")[0], 200)

    def test_flags(self):
        g = Fake("--permissions", json.dumps([{"actions": ["*"]}, {"actions": ["*/read"]}]),
                 "--permissions-page", "1", "--permissions-error", "429:TooManyRequests")
        try:
            g.call("POST", "/__rg", {"subscription": SUB, "resource_group": RG, "location": "eastus"}, query="")
            s, out, _ = g.call("GET", PERMS, query=AUTH_API)
            self.assertEqual((s, out["error"]["code"]), (429, "TooManyRequests"))
            g.call("POST", "/__faults", {"permissions_error": None}, query="")
            s, out, _ = g.call("GET", PERMS, query=AUTH_API)
            self.assertEqual((s, out["value"][0]["actions"]), (200, ["*"]))
            self.assertIn("nextLink", out)
        finally:
            g.stop()


if __name__ == "__main__":
    unittest.main()
