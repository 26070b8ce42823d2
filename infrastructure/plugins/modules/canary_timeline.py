"""Module ``sentiment.platform.canary_timeline``: follow a Flagger canary analysis to its verdict."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: canary_timeline
short_description: Record a Flagger Canary's analysis (weight, gates, replicas) until it is promoted or rolled back
author: sentiment-platform maintainers
description:
  - Polls a C(flagger.app/v1beta1) Canary every O(interval) seconds until its analysis ends (phase
    C(Succeeded) or C(Failed) after it started) or O(timeout) seconds pass, and returns one sample per poll.
  - Each sample holds the Canary's phase, traffic weight and failed checks, the ready replicas of the
    primary and the canary Deployments, and the value of every gate, computed by running the query of each
    MetricTemplate the Canary names against the Prometheus the template names (through the API server's
    service proxy, so the host needs no route into the cluster), plus request rate and p95 latency of
    /predict per track.
  - Returns Flagger's Events about the Canary since the module started (why a step halted, why it rolled back).
  - Read-only.
options:
  name: {description: Canary name (the target Deployment's)., type: str, required: true}
  namespace: {description: Canary namespace., type: str, required: true}
  timeout: {description: Seconds to follow the analysis before giving up., type: int, default: 900}
  interval: {description: Seconds between samples., type: int, default: 5}
  started_after:
    description:
      - C(lastTransitionTime) of the Canary before the candidate was applied; the analysis counts as started
        once the status moves past it (so a verdict of an earlier rollout is not taken for this one's).
    type: str
    default: ""
extends_documentation_fragment: [sentiment.platform.kube]
"""

EXAMPLES = r"""
- name: Follow the model's canary to its verdict
  sentiment.platform.canary_timeline:
    name: sentiment-service
    namespace: sentiment
    timeout: 900
    started_after: "{{ before.resources[0].status.lastTransitionTime }}"
  register: rollout_timeline
"""

RETURN = r"""
samples:
  description: >-
    One entry per poll - t (seconds since start), phase, weight, failed_checks, ready replicas of the
    primary and the canary, gates (gate name to value, null when the query had no answer) and tracks
    (primary/canary to rps and p95_seconds).
  type: list
  elements: dict
  returned: always
phase: {description: The last phase seen., type: str, returned: always}
outcome:
  description: promoted (Succeeded), rolled_back (Failed), or timed_out.
  type: str
  returned: always
gates:
  description: The gates as the Canary declares them - name, query, and the thresholdRange bounds.
  type: list
  elements: dict
  returned: always
events:
  description: Flagger's Events about the Canary since the module started - seconds, type, message.
  type: list
  elements: dict
  returned: always
"""

import json
import math
import time
from datetime import datetime
from urllib.parse import urlparse

from ansible_collections.sentiment.platform.plugins.module_utils.kube import client, kube_module

FLAGGER = ("flagger.app", "v1beta1")
DONE = {"Succeeded": "promoted", "Failed": "rolled_back"}


def track_queries(namespace: str, name: str, window: str) -> dict[str, dict[str, str]]:
    """Request rate and p95 of /predict for the primary's pods and the canary's."""
    pods = {"primary": f"{name}-primary-[0-9a-zA-Z]+-[0-9a-zA-Z]+", "canary": f"{name}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}
    queries = {}
    for track, pod in pods.items():
        selector = f'namespace="{namespace}", pod=~"{pod}", route="/predict"'
        queries[track] = {
            "rps": f"sum(rate(http_requests_total{{{selector}}}[{window}]))",
            "p95_seconds": "histogram_quantile(0.95, sum by (le) "
            f"(rate(http_request_duration_seconds_bucket{{{selector}}}[{window}])))",
        }
    return queries


def proxy_target(address: str) -> tuple[str, str]:
    """http://<service>.<namespace>.svc:<port> -> (namespace, '<service>:<port>') for the service proxy."""
    url = urlparse(address)
    host = url.hostname or ""
    parts = host.split(".")
    if len(parts) < 2:
        raise ValueError(f"cannot tell the Service of Prometheus address {address}")
    return parts[1], f"{parts[0]}:{url.port or 80}"


def scalar(api: client.CoreV1Api, target: tuple[str, str], query: str) -> float | None:
    """The single value of an instant query, or None when it has no answer (as Flagger sees it too)."""
    namespace, service = target
    # The generated proxy method takes no query string: serialise the call as it would, with one.
    method, url, headers, body, post = api.api_client.param_serialize(
        method="GET",
        resource_path="/api/v1/namespaces/{namespace}/services/{name}/proxy/api/v1/query",
        path_params={"namespace": namespace, "name": service},
        query_params=[("query", query)],
        auth_settings=["BearerToken"],
    )
    response = api.api_client.call_api(method, url, headers, body, post, _request_timeout=10)
    response.read()
    body = json.loads(response.data)
    result = body.get("data", {}).get("result", [])
    if len(result) != 1:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else round(value, 6)  # NaN: no data, as Flagger reads it


def parse_time(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    module = kube_module(
        {
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 900},
            "interval": {"type": "int", "default": 5},
            "started_after": {"type": "str", "default": ""},
        }
    )
    p = module.params
    custom, apps, core = client.CustomObjectsApi(), client.AppsV1Api(), client.CoreV1Api()
    name, namespace = p["name"], p["namespace"]

    canary = custom.get_namespaced_custom_object(*FLAGGER, namespace, "canaries", name)
    gates, target = [], None
    for metric in canary["spec"].get("analysis", {}).get("metrics", []):
        if "templateRef" not in metric:
            continue
        ref = metric["templateRef"]
        template = custom.get_namespaced_custom_object(
            *FLAGGER, ref.get("namespace", namespace), "metrictemplates", ref["name"]
        )
        target = target or proxy_target(template["spec"]["provider"]["address"])
        bounds = metric.get("thresholdRange", {})
        gates.append({"name": metric["name"], "query": template["spec"]["query"], **bounds})
    window = canary["spec"]["analysis"]["metrics"][0].get("interval", "1m") if gates else "1m"
    tracks = track_queries(namespace, name, window)

    started_wall, started = time.time(), time.monotonic()
    since = parse_time(p["started_after"])
    samples: list[dict] = []
    outcome, phase = "timed_out", ""
    while time.monotonic() - started < p["timeout"]:
        status = custom.get_namespaced_custom_object(*FLAGGER, namespace, "canaries", name).get("status", {})
        phase = status.get("phase", "")
        ready = {}
        for track, deployment in (("primary", f"{name}-primary"), ("canary", name)):
            ready[track] = apps.read_namespaced_deployment(deployment, namespace).status.ready_replicas or 0
        sample = {
            "t": round(time.monotonic() - started, 1),
            "phase": phase,
            "weight": status.get("canaryWeight", 0),
            "failed_checks": status.get("failedChecks", 0),
            "ready": ready,
        }
        if target is not None:
            sample["gates"] = {gate["name"]: scalar(core, target, gate["query"]) for gate in gates}
            sample["tracks"] = {
                track: {key: scalar(core, target, query) for key, query in queries.items()}
                for track, queries in tracks.items()
            }
        samples.append(sample)
        moved_on = parse_time(status.get("lastTransitionTime")) > since
        if phase in DONE and moved_on and any(s["phase"] not in DONE for s in samples):
            outcome = DONE[phase]
            break
        time.sleep(p["interval"])

    events = []
    for event in core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items:
        when = event.last_timestamp or event.event_time or event.first_timestamp
        if event.involved_object.kind == "Canary" and when and when.timestamp() >= started_wall - 1:
            events.append(
                {"t": round(when.timestamp() - started_wall, 1), "type": event.type, "message": event.message}
            )
    events.sort(key=lambda event: event["t"])
    module.exit_json(changed=False, samples=samples, phase=phase, outcome=outcome, gates=gates, events=events)


if __name__ == "__main__":
    main()
