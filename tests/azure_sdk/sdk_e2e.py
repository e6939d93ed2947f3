"""Drives Microsoft's own SDK (azure-mgmt-security 7.0.0) against a steward daemon.

Started by the Rust integration test `azure_sdk::the_sdk_drives_every_operation`
(tests/it/azure_sdk.rs), which starts the daemon on a temp socket, ingests the alerts named
in $STEWARD_ALERTS and checks the audit log afterwards. Environment:

  STEWARD_SOCKET        the daemon's Unix socket
  STEWARD_SUBSCRIPTION  the tenant id, used as the subscription id
  STEWARD_ALERTS        a JSON file: [{"alert": <as ingested>, "rg": str|null, "loc": str}]
  STEWARD_USER          the OS user running this (the daemon's identity of the caller)

The SDK talks HTTP straight over the Unix socket through `UnixSocketTransport` (no TCP
bridge), so the daemon sees this process's own uid. The credential is a stub: steward
ignores the bearer token; the OS user is the identity. Exits 0 when every check passed,
1 with the failed check's description otherwise.
"""

import copy
import datetime
import http.client
import json
import os
import socket
import sys
import time
import urllib.parse

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.transport import HttpResponse, HttpTransport
from azure.core.utils import case_insensitive_dict
from azure.core.rest import HttpRequest
from azure.mgmt.security import SecurityCenter
from azure.mgmt.security.v2020_01_01 import models as jit_models
from azure.mgmt.security.v2020_01_01_preview import models as contact_models


class _UnixConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection to a Unix socket."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _UnixResponse(HttpResponse):
    """An azure-core response read whole from an http.client response."""

    def __init__(self, request, response):
        super().__init__(request, response)
        self.status_code = response.status
        self.headers = case_insensitive_dict(response.getheaders())
        self.reason = response.reason
        self.content_type = self.headers.get("Content-Type")
        self._data = response.read()

    def body(self):
        return self._data


class UnixSocketTransport(HttpTransport):
    """An azure-core transport sending each request over a Unix socket.

    The URL's scheme and host are ignored (the socket is the host); its path and query
    are sent as they are. One connection per request keeps it small and obviously right.
    """

    def __init__(self, path):
        self._path = path

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def open(self):
        pass

    def close(self):
        pass

    def send(self, request, **kwargs):
        url = urllib.parse.urlsplit(request.url)
        target = url.path + ("?" + url.query if url.query else "")
        conn = _UnixConnection(self._path)
        try:
            conn.request(request.method, target, body=request.data, headers=dict(request.headers))
            return _UnixResponse(request, conn.getresponse())
        finally:
            conn.close()


class StubCredential:
    """A TokenCredential azure-core accepts; steward never looks at the token."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken("steward-ignores-this-token", int(time.time()) + 3600)


CHECKS = []


def check(what, got, want):
    """Records one comparison; fails the run at once on a mismatch."""
    CHECKS.append(what)
    if got != want:
        print(f"FAILED: {what}\n  got:  {got!r}\n  want: {want!r}", file=sys.stderr)
        sys.exit(1)


def expect_error(what, status, call):
    """Runs `call`, which must fail with HTTP `status`; answers the error."""
    try:
        call()
    except HttpResponseError as e:
        check(f"{what}: status", e.status_code, status)
        return e
    check(f"{what}: an error", "no error", f"HTTP {status}")
    return None


def pages(pager):
    """Every item of a pager and the number of pages it took."""
    items, count = [], 0
    for page in pager.by_page():
        count += 1
        items.extend(page)
    return items, count


def main():
    sock = os.environ["STEWARD_SOCKET"]
    sub = os.environ["STEWARD_SUBSCRIPTION"]
    user = os.environ["STEWARD_USER"]
    with open(os.environ["STEWARD_ALERTS"], encoding="utf-8") as f:
        alerts = json.load(f)

    client = SecurityCenter(
        StubCredential(),
        sub,
        base_url="https://steward.invalid",
        transport=UnixSocketTransport(sock),
    )
    contacts(client, sub)
    jit(client, sub, user)
    alert_ops(client, sub, alerts)
    errors(client, sub)
    print(f"{len(CHECKS)} checks passed")


def contacts(client, sub):
    """security_contacts (api-version 2020-01-01-preview): create, get, list, delete."""
    ops = client.security_contacts
    written = {
        "default": contact_models.SecurityContact(
            emails="alice@contoso.com;bob@contoso.com",
            phone="(214)275-4038",
            alert_notifications=contact_models.SecurityContactPropertiesAlertNotifications(
                state="On", minimal_severity="Medium"
            ),
            notifications_by_role=contact_models.SecurityContactPropertiesNotificationsByRole(
                state="On", roles=["Owner", "AccountAdmin"]
            ),
        ),
        "night-shift": contact_models.SecurityContact(
            emails="carol@contoso.com",
            phone="+44 20 7946 0958",
            alert_notifications=contact_models.SecurityContactPropertiesAlertNotifications(
                state="Off", minimal_severity="High"
            ),
            notifications_by_role=contact_models.SecurityContactPropertiesNotificationsByRole(
                state="Off", roles=[]
            ),
        ),
    }

    def same(label, got, want, name):
        check(f"{label} {name}: name", got.name, name)
        check(
            f"{label} {name}: id",
            got.id,
            f"/subscriptions/{sub}/providers/Microsoft.Security/securityContacts/{name}",
        )
        check(f"{label} {name}: type", got.type, "Microsoft.Security/securityContacts")
        check(f"{label} {name}: emails", got.emails, want.emails)
        check(f"{label} {name}: phone", got.phone, want.phone)
        check(
            f"{label} {name}: alertNotifications",
            got.alert_notifications.as_dict(),
            want.alert_notifications.as_dict(),
        )
        check(
            f"{label} {name}: notificationsByRole",
            got.notifications_by_role.as_dict(),
            want.notifications_by_role.as_dict(),
        )

    for name, body in written.items():
        same("create", ops.create(name, body), body, name)
        same("get", ops.get(name), body, name)
    listed = {c.name: c for c in ops.list()}
    check("list: names", sorted(listed), sorted(written))
    for name, body in written.items():
        same("list", listed[name], body, name)
    # Replacing answers 200 (the SDK accepts 200 and 201) and reads back the new value.
    body = written["night-shift"]
    body.phone = "+44 20 7946 0000"
    same("replace", ops.create("night-shift", body), body, "night-shift")
    check("delete: returns", ops.delete("night-shift"), None)
    expect_error("get after delete", 404, lambda: ops.get("night-shift"))
    # Deleting what is not there is the spec's 204, which the SDK takes without error.
    check("delete again: returns", ops.delete("night-shift"), None)
    check("list after delete", [c.name for c in ops.list()], ["default"])


def policy_body(sub, rg, vm, port):
    """A policy the SDK writes: one VM in `rg`, two ports."""
    vm_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}"
    return jit_models.JitNetworkAccessPolicy(
        kind="Basic",
        virtual_machines=[
            jit_models.JitNetworkAccessPolicyVirtualMachine(
                id=vm_id,
                ports=[
                    jit_models.JitNetworkAccessPortRule(
                        number=port,
                        protocol="TCP",
                        allowed_source_address_prefix="198.51.100.0/24",
                        max_request_access_duration="PT3H",
                    ),
                    jit_models.JitNetworkAccessPortRule(
                        number=3389,
                        protocol="*",
                        allowed_source_address_prefixes=["203.0.113.5", "203.0.113.0/28"],
                        max_request_access_duration="PT1H",
                    ),
                ],
            )
        ],
    )


def jit(client, sub, user):
    """jit_network_access_policies (2020-01-01): create_or_update, get, the four lists,
    initiate, delete."""
    ops = client.jit_network_access_policies
    placed = [
        ("rg1", "westeurope", "p1", "vm1", 22),
        ("rg1", "westeurope", "p2", "vm2", 2222),
        ("rg1", "northeurope", "p3", "vm3", 22),
        ("rg2", "westeurope", "p4", "vm4", 22),
        ("rg2", "northeurope", "p5", "vm5", 5985),
    ]
    written = {}

    def same(label, got, want, rg, loc, name):
        check(f"{label} {name}: name", got.name, name)
        check(
            f"{label} {name}: id",
            got.id,
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Security/locations/{loc}/jitNetworkAccessPolicies/{name}",
        )
        check(f"{label} {name}: location", got.location, loc)
        check(f"{label} {name}: kind", got.kind, want.kind)
        check(f"{label} {name}: provisioningState", got.provisioning_state, "Succeeded")
        check(
            f"{label} {name}: virtualMachines",
            [vm.as_dict() for vm in got.virtual_machines],
            [vm.as_dict() for vm in want.virtual_machines],
        )

    for rg, loc, name, vm, port in placed:
        body = policy_body(sub, rg, vm, port)
        written[name] = (rg, loc, body)
        same("create", ops.create_or_update(rg, loc, name, body), body, rg, loc, name)
        same("get", ops.get(rg, loc, name), body, rg, loc, name)
    # The path places a policy: the same name is not found at another group or location.
    expect_error("get at another location", 404, lambda: ops.get("rg1", "northeurope", "p1"))
    expect_error("get at another group", 404, lambda: ops.get("rg2", "westeurope", "p1"))

    def names(pager):
        items, count = pages(pager)
        for p in items:
            rg, loc, body = written[p.name]
            same("listed", p, body, rg, loc, p.name)
        return sorted(p.name for p in items), count

    limit = {"params": {"limit": "2"}}
    got, count = names(ops.list(**limit))
    check("list: names", got, ["p1", "p2", "p3", "p4", "p5"])
    check("list: pages of 2", count, 3)
    check("list_by_region", names(ops.list_by_region("westeurope", **limit))[0], ["p1", "p2", "p4"])
    check("list_by_resource_group", names(ops.list_by_resource_group("rg2"))[0], ["p4", "p5"])
    check(
        "list_by_resource_group_and_region",
        names(ops.list_by_resource_group_and_region("rg1", "westeurope"))[0],
        ["p1", "p2"],
    )

    # initiate: 202 with the request, whose requestor is this OS user.
    end = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(hours=1)
    vm_id = written["p1"][2].virtual_machines[0].id
    asked = jit_models.JitNetworkAccessPolicyInitiateRequest(
        virtual_machines=[
            jit_models.JitNetworkAccessPolicyInitiateVirtualMachine(
                id=vm_id,
                ports=[
                    jit_models.JitNetworkAccessPolicyInitiatePort(
                        number=22, allowed_source_address_prefix="198.51.100.7", end_time_utc=end
                    )
                ],
            )
        ],
        justification="patching through the SDK",
    )
    req = ops.initiate("rg1", "westeurope", "p1", asked)
    check("initiate: requestor", req.requestor, user)
    check("initiate: justification", req.justification, "patching through the SDK")
    check("initiate: vm", req.virtual_machines[0].id, vm_id)
    port = req.virtual_machines[0].ports[0]
    check("initiate: port", port.number, 22)
    check("initiate: source", port.allowed_source_address_prefix, "198.51.100.7")
    check("initiate: end", port.end_time_utc, end)
    check("initiate: status", port.status, "Initiated")
    expect_error("initiate at another location", 404, lambda: ops.initiate("rg1", "northeurope", "p1", asked))
    requests = ops.get("rg1", "westeurope", "p1").requests
    check("policy lists its request", [r.requestor for r in requests], [user])

    # delete: 200, then the policy is gone; deleting again is the spec's 204.
    check("delete: returns", ops.delete("rg2", "northeurope", "p5"), None)
    expect_error("get after delete", 404, lambda: ops.get("rg2", "northeurope", "p5"))
    check("delete again: returns", ops.delete("rg2", "northeurope", "p5"), None)
    check("delete elsewhere leaves it", ops.delete("rg9", "westeurope", "p4"), None)
    check("still there", ops.get("rg2", "westeurope", "p4").name, "p4")


def alert_ops(client, sub, alerts):
    """alerts (2022-01-01): the four lists, the two gets, and the 405 of the state actions
    and of simulate."""
    ops = client.alerts
    by_name = {a["alert"]["name"]: a for a in alerts}

    def same(label, got):
        want = by_name[got.name]
        rg = f"/resourceGroups/{want['rg']}" if want["rg"] else ""
        check(
            f"{label} {got.name}: id",
            got.id,
            f"/subscriptions/{sub}{rg}/providers/Microsoft.Security/locations/{want['loc']}/alerts/{got.name}",
        )
        # What the SDK reads from the daemon equals what it reads from the alert as the
        # source sent it, field by field (the SDK's own model decodes both).
        served = got.as_dict(keep_readonly=True)
        sent = ops._deserialize("Alert", copy.deepcopy(want["alert"])).as_dict(keep_readonly=True)  # pylint: disable=protected-access
        check(f"{label} {got.name}: fields", sorted(k for k in served if k not in ("id", "type")),
              sorted(k for k in sent if k not in ("id", "type")))
        for key, value in sent.items():
            if key not in ("id", "type"):
                check(f"{label} {got.name}: {key}", served.get(key), value)

    def names(pager, want_pages=None):
        items, count = pages(pager)
        for a in items:
            same("listed", a)
        if want_pages is not None:
            check("pages of 2", count, want_pages)
        return sorted(a.name for a in items)

    def where(rg=None, loc=None):
        return sorted(
            n
            for n, a in by_name.items()
            if (rg is None or a["rg"] == rg) and (loc is None or a["loc"] == loc)
        )

    limit = {"params": {"limit": "2"}}
    check("alerts list", names(ops.list(**limit), want_pages=3), where())
    check("list_by_resource_group", names(ops.list_by_resource_group("rg1")), where(rg="rg1"))
    check(
        "list_subscription_level_by_region",
        names(ops.list_subscription_level_by_region("westeurope")),
        where(loc="westeurope"),
    )
    check(
        "list_resource_group_level_by_region",
        names(ops.list_resource_group_level_by_region("westeurope", "rg1")),
        where(rg="rg1", loc="westeurope"),
    )
    for name, a in by_name.items():
        if a["rg"]:
            same("get_resource_group_level", ops.get_resource_group_level(a["rg"], a["loc"], name))
        same("get_subscription_level", ops.get_subscription_level(a["loc"], name))
    some = next(n for n, a in by_name.items() if a["rg"])
    a = by_name[some]
    expect_error("get at another location", 404, lambda: ops.get_subscription_level("nowhere", some))
    expect_error("get at another group", 404, lambda: ops.get_resource_group_level("rg9", a["loc"], some))
    # Alerts are read-only: every state action is a 405 naming why.
    for action in ("dismiss", "resolve", "activate", "in_progress"):
        e = expect_error(
            f"state to {action}",
            405,
            lambda: getattr(ops, f"update_subscription_level_state_to_{action}")(a["loc"], some),
        )
        check(f"state to {action}: says read-only", "read-only" in e.message, True)
        expect_error(
            f"rg state to {action}",
            405,
            lambda: getattr(ops, f"update_resource_group_level_state_to_{action}")(a["rg"], a["loc"], some),
        )
    e = expect_error(
        "simulate",
        405,
        lambda: ops.begin_simulate(a["loc"], {"properties": {"kind": "Bundles", "bundles": ["VirtualMachines"]}}),
    )
    check("simulate: says read-only", "read-only" in e.message, True)
    check("status unchanged", ops.get_subscription_level(a["loc"], some).status, a["alert"]["properties"]["status"])
    check("no alert was added", sorted(x.name for x in ops.list()), where())


def get_raw(client, path):
    """A GET of `path` through the SDK's own pipeline (auth, headers, transport)."""
    pipeline = client._client  # pylint: disable=protected-access
    return pipeline.send_request(HttpRequest("GET", pipeline.format_url(path)))


def errors(client, sub):
    """An ARM-shaped 400 with `target`, an unknown api-version, and 404s."""
    bad = contact_models.SecurityContact(emails="alice@contoso.com;not-an-address")
    e = expect_error("bad email", 400, lambda: client.security_contacts.create("default", bad))
    check("bad email: code", e.error.code, "InvalidInput")
    check("bad email: target", e.error.target, "properties.emails")
    check("bad email: nothing lost", client.security_contacts.get("default").emails, "alice@contoso.com;bob@contoso.com")

    e = expect_error(
        "unknown api-version",
        400,
        lambda: list(client.security_contacts.list(api_version="2017-08-01-preview")),
    )
    check("unknown api-version: target", e.error.target, "api-version")
    check(
        "unknown api-version: names the served ones",
        "2020-01-01-preview" in e.error.message and "2023-12-01-preview" in e.error.message,
        True,
    )
    # The 2023-12-01-preview shape of the same contact: the Alert source of the 2020 write.
    raw = get_raw(
        client,
        f"/subscriptions/{sub}/providers/Microsoft.Security/securityContacts/default?api-version=2023-12-01-preview",
    )
    check("2023 shape: status", raw.status_code, 200)
    props = json.loads(raw.text())["properties"]
    check("2023 shape: sources", props.get("notificationsSources"), [{"sourceType": "Alert", "minimalSeverity": "Medium"}])
    check("2023 shape: no 2020 field", "alertNotifications" in props, False)

    e = expect_error("missing contact", 404, lambda: client.security_contacts.get("nobody"))
    check("missing contact: ResourceNotFoundError", isinstance(e, ResourceNotFoundError), True)
    check("missing contact: code", e.error.code, "NotFound")
    raw = get_raw(client, f"/subscriptions/{sub}/providers/Microsoft.Security/pricings?api-version=2024-01-01")
    check("unserved path: status", raw.status_code, 404)
    check("unserved path: names /v1", f"/v1/tenants/{sub}/" in json.loads(raw.text())["error"]["message"], True)


if __name__ == "__main__":
    main()
