"""Module ``sentiment.platform.hpa_timeline``: sample a HorizontalPodAutoscaler's replica counts for a while."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hpa_timeline
short_description: Record an HPA's current and desired replicas over time
author: sentiment-platform maintainers
description:
  - Polls an autoscaling/v2 HorizontalPodAutoscaler every O(interval) seconds for O(duration) seconds
    and returns the samples, with the ready pods of its target Deployment. Read-only.
options:
  name: {description: HPA name., type: str, required: true}
  namespace: {description: HPA namespace., type: str, required: true}
  duration: {description: Seconds to watch., type: int, required: true}
  interval: {description: Seconds between samples., type: int, default: 5}
  stop_above:
    description: Stop early once the current replicas exceed this many (0 never stops early).
    type: int
    default: 0
extends_documentation_fragment: [sentiment.platform.kube]
"""

EXAMPLES = r"""
- name: Watch the model's HPA for two minutes while a load test runs
  sentiment.platform.hpa_timeline:
    name: sentiment-service
    namespace: sentiment
    duration: 120
    interval: 5
  register: load_timeline

- name: Stop as soon as the HPA has more than 4 replicas
  sentiment.platform.hpa_timeline:
    name: sentiment-service
    namespace: sentiment
    duration: 300
    stop_above: 4
"""

RETURN = r"""
samples:
  description: One entry per poll - seconds since start, current, desired and ready replicas.
  type: list
  elements: dict
  returned: always
min_replicas: {description: The HPA's minReplicas., type: int, returned: always}
max_replicas: {description: The HPA's maxReplicas., type: int, returned: always}
peak_replicas: {description: Highest current replica count seen., type: int, returned: always}
first_scale_out_s:
  description: Seconds until current replicas first exceeded minReplicas, or null.
  type: float
  returned: always
"""

import time

from ansible_collections.sentiment.platform.plugins.module_utils.kube import client, kube_module


def summarise(samples: list[dict], min_replicas: int) -> tuple[int, float | None]:
    """Peak current replicas, and when the count first went above the minimum."""
    peak = max((s["current"] for s in samples), default=0)
    first = next((s["t"] for s in samples if s["current"] > min_replicas), None)
    return peak, first


def main() -> None:
    module = kube_module(
        {
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "duration": {"type": "int", "required": True},
            "interval": {"type": "int", "default": 5},
            "stop_above": {"type": "int", "default": 0},
        }
    )
    p = module.params
    autoscaling = client.AutoscalingV2Api()
    apps = client.AppsV1Api()

    samples: list[dict] = []
    started = time.monotonic()
    hpa = None
    while True:
        hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler(p["name"], p["namespace"])
        target = hpa.spec.scale_target_ref
        deployment = apps.read_namespaced_deployment(target.name, p["namespace"])
        sample = {
            "t": round(time.monotonic() - started, 1),
            "current": hpa.status.current_replicas or 0,
            "desired": hpa.status.desired_replicas or 0,
            "ready": deployment.status.ready_replicas or 0,
        }
        samples.append(sample)
        if p["stop_above"] and sample["current"] > p["stop_above"]:
            break
        if time.monotonic() - started + p["interval"] > p["duration"]:
            break
        time.sleep(p["interval"])

    peak, first = summarise(samples, hpa.spec.min_replicas or 1)
    module.exit_json(
        changed=False,
        samples=samples,
        min_replicas=hpa.spec.min_replicas or 1,
        max_replicas=hpa.spec.max_replicas,
        peak_replicas=peak,
        first_scale_out_s=first,
    )


if __name__ == "__main__":
    main()
