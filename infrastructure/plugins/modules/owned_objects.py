"""Module ``sentiment.platform.owned_objects``: every object of the given kinds that carries this installation's
ownership labels, in one API session."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: owned_objects
short_description: List the objects of given kinds that belong to this installation
author: sentiment-platform maintainers
description:
  - Lists, across all namespaces, every object of each kind in O(kinds) that carries
    C(app.kubernetes.io/managed-by=sentiment-platform) and this O(instance)'s C(app.kubernetes.io/instance).
    Read-only; teardown.yml runs it to find what it may delete.
  - One module run and one API discovery for all kinds (a M(kubernetes.core.k8s_info) loop pays both per kind).
  - A kind the cluster does not serve (its CRD was never installed, or is gone) has no objects.
options:
  kinds:
    description: The kinds to list, each as C(api_version) and C(kind).
    type: list
    elements: dict
    required: true
  instance:
    description: This installation's name (platform_instance), the value of C(app.kubernetes.io/instance).
    type: str
    required: true
extends_documentation_fragment: [sentiment.platform.kube]
"""

EXAMPLES = r"""
- name: Find this installation's objects
  sentiment.platform.owned_objects:
    kinds:
      - {api_version: v1, kind: Namespace}
      - {api_version: flagger.app/v1beta1, kind: Canary}
    instance: sentiment
  register: found

- name: Delete them
  kubernetes.core.k8s:
    state: absent
    definition: "{{ found.resources }}"
"""

RETURN = r"""
resources:
  description: The objects found, kind by kind in the order of O(kinds), each as the API returns it with its
    C(apiVersion) and C(kind).
  type: list
  elements: dict
  returned: always
not_served:
  description: The kinds of O(kinds) the cluster does not serve (C(api_version/kind)).
  type: list
  elements: str
  returned: always
"""

from ansible_collections.sentiment.platform.plugins.module_utils.kube import client, kube_module
from ansible_collections.sentiment.platform.plugins.module_utils.ownership import INSTANCE, MANAGED_BY, MANAGER

try:
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ResourceNotFoundError
except ImportError:  # pragma: no cover - kube_module reports the missing package
    DynamicClient = ResourceNotFoundError = None


def label_selector(instance: str) -> str:
    """The ownership labels as a label selector."""
    return f"{MANAGED_BY}={MANAGER},{INSTANCE}={instance}"


def with_type(items: list[dict], api_version: str, kind: str) -> list[dict]:
    """A list's items with the apiVersion and kind the API leaves out of them."""
    return [{"apiVersion": api_version, "kind": kind, **item} for item in items]


def main() -> None:
    module = kube_module(
        {
            "kinds": {"type": "list", "elements": "dict", "required": True},
            "instance": {"type": "str", "required": True},
        }
    )
    dynamic = DynamicClient(client.ApiClient())
    selector = label_selector(module.params["instance"])
    resources: list[dict] = []
    not_served: list[str] = []
    for wanted in module.params["kinds"]:
        api_version, kind = wanted.get("api_version"), wanted.get("kind")
        if not api_version or not kind:
            module.fail_json(msg=f"each of kinds needs api_version and kind, got {wanted}")
        try:
            resource = dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            not_served.append(f"{api_version}/{kind}")
            continue
        try:
            found = resource.get(label_selector=selector).to_dict()
        except Exception as exc:  # noqa: BLE001 - an API error names the kind it was about
            module.fail_json(msg=f"cannot list {api_version}/{kind}: {exc}")
        resources.extend(with_type(found.get("items") or [], api_version, kind))
    module.exit_json(changed=False, resources=resources, not_served=not_served)


if __name__ == "__main__":
    main()
