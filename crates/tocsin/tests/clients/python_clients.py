"""Drive Tocsin with the senders' own Python client libraries.

Usage: python_clients.py BASE_URL PD_KEY OG_KEY
BASE_URL is https (PyPI `pagerduty` refuses anything else); the test points
REQUESTS_CA_BUNDLE at its self-signed certificate. Prints one JSON object
with what each library got back; any error exits non-zero.
"""

import json
import os
import sys

import opsgenie_sdk
import pagerduty
import pdpyras

base, pd_key, og_key = sys.argv[1:4]
out = {}

# PyPI `pagerduty` 7.x: EventsApiV2Client, https base URL only.
client = pagerduty.EventsApiV2Client(pd_key, base_url=base)
key = client.trigger("pagerduty lib: disk full", "db-1", severity="critical")
client.acknowledge(key)
out["pagerduty"] = {"dedup_key": key}
key2 = client.trigger("pagerduty lib: to resolve", "db-2", dedup_key="pd-lib-resolve")
client.resolve(key2)
out["pagerduty"]["resolved"] = key2

# pdpyras 5.x: EventsAPISession with its url pointed at Tocsin.
session = pdpyras.EventsAPISession(pd_key)
session.url = base
key = session.trigger("pdpyras: queue stuck", "worker-3", severity="error")
session.resolve(key)
out["pdpyras"] = {"dedup_key": key}

# opsgenie-sdk 2.x: create, look the request up, get, then close by id.
conf = opsgenie_sdk.configuration.Configuration()
conf.host = base
# The Configuration class shares one api_key dict between instances.
conf.api_key = {"Authorization": og_key}
# The SDK's urllib3 pool does not read REQUESTS_CA_BUNDLE; name the CA itself.
conf.ssl_ca_cert = os.environ["REQUESTS_CA_BUNDLE"]
api = opsgenie_sdk.AlertApi(api_client=opsgenie_sdk.api_client.ApiClient(configuration=conf))
created = api.create_alert(
    create_alert_payload=opsgenie_sdk.CreateAlertPayload(
        message="opsgenie sdk: latency high", alias="og-sdk-latency", priority="P2"
    )
)
status = api.get_request_status(request_id=created.request_id)
alert_id = status.data.alert_id
got = api.get_alert(identifier=alert_id, identifier_type="id")
api.close_alert(
    identifier=alert_id,
    identifier_type="id",
    close_alert_payload=opsgenie_sdk.CloseAlertPayload(note="closed by the SDK"),
)
closed = api.get_alert(identifier=alert_id, identifier_type="id")
out["opsgenie"] = {
    "alert_id": alert_id,
    "message": got.data.message,
    "priority": got.data.priority,
    "status_after_close": closed.data.status,
    "request_action": status.data.action,
}

print(json.dumps(out))
