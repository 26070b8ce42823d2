"""Module ``sentiment.platform.ownership``: which of the objects a run would write exist and are not ours."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ownership
short_description: Find the objects a run would write that exist in the cluster and belong to someone else
author: sentiment-platform maintainers
description:
  - Looks up every document of O(documents) in the cluster by apiVersion, kind, name and namespace, and sorts
    each into absent, ours (it carries C(app.kubernetes.io/managed-by=sentiment-platform) and this
    O(instance)'s C(app.kubernetes.io/instance)) or a conflict (it exists without them). Read-only; site.yml
    runs it before it applies anything and stops on any conflict, so that nothing is half applied.
  - An object of the platform's 1.x releases (C(app.kubernetes.io/part-of=sentiment-platform), no managed-by
    label) counts as ours, so that an installation upgrades in place; the run then labels it.
  - A kind the cluster does not serve (a CRD not installed yet) means its objects are absent.
options:
  documents:
    description:
      - The objects as they would be applied - at least apiVersion, kind, metadata.name, and metadata.namespace
        where the kind is namespaced.
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
- name: Find the objects this run would take over
  sentiment.platform.ownership:
    documents: "{{ query('ansible.builtin.file', *files) | map('ansible.builtin.from_yaml_all') | flatten }}"
    instance: sentiment
  register: platform_ownership

- name: Stop on the first run that would change someone else's object
  ansible.builtin.fail:
    msg: "{{ platform_ownership.conflicts | map(attribute='object') | list }}"
  when: platform_ownership.conflicts | length > 0
"""

RETURN = r"""
conflicts:
  description: Objects that exist without this installation's ownership labels - the object (C(Kind/name) or
    C(Kind/namespace/name)), its kind, name, namespace, its managed-by and instance labels (null when unset).
  type: list
  elements: dict
  returned: always
ours:
  description: Objects that exist and are this installation's (C(Kind/name) or C(Kind/namespace/name)).
  type: list
  elements: str
  returned: always
absent:
  description: Objects that do not exist yet.
  type: list
  elements: str
  returned: always
"""

from ansible_collections.sentiment.platform.plugins.module_utils.kube import client, kube_module
from ansible_collections.sentiment.platform.plugins.module_utils.ownership import INSTANCE, MANAGED_BY, owner

try:
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
except ImportError:  # pragma: no cover - kube_module reports the missing package
    DynamicClient = NotFoundError = ResourceNotFoundError = None


def object_ref(document: dict) -> str:
    """Kind/name, or Kind/namespace/name for a namespaced object."""
    meta = document.get("metadata") or {}
    parts = [document.get("kind", "?"), meta.get("namespace"), meta.get("name", "?")]
    return "/".join(part for part in parts if part)


def classify(documents: list[dict], found: dict[str, dict | None], instance: str) -> dict:
    """Sort the documents by what the cluster holds under each reference (its labels, or None: absent)."""
    result: dict = {"conflicts": [], "ours": [], "absent": []}
    seen: set[str] = set()
    for document in documents:
        ref = object_ref(document)
        if ref in seen:
            continue
        seen.add(ref)
        labels = found.get(ref)
        if labels is None:
            result["absent"].append(ref)
        elif owner(labels, instance) == "ours":
            result["ours"].append(ref)
        else:
            meta = document.get("metadata") or {}
            result["conflicts"].append(
                {
                    "object": ref,
                    "kind": document.get("kind"),
                    "name": meta.get("name"),
                    "namespace": meta.get("namespace"),
                    "managed_by": labels.get(MANAGED_BY),
                    "instance": labels.get(INSTANCE),
                }
            )
    return result


def lookup_labels(dynamic, document: dict) -> dict | None:
    """The labels of the object the document names (an empty dict when it has none), or None if it does not
    exist or its kind is not served."""
    meta = document.get("metadata") or {}
    try:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
    except ResourceNotFoundError:
        return None
    try:
        found = resource.get(name=meta["name"], namespace=meta.get("namespace") if resource.namespaced else None)
    except NotFoundError:
        return None
    return dict(found.metadata.labels or {})


def main() -> None:
    module = kube_module(
        {
            "documents": {"type": "list", "elements": "dict", "required": True},
            "instance": {"type": "str", "required": True},
        }
    )
    documents = [d for d in module.params["documents"] if d and d.get("kind") and d.get("metadata")]
    dynamic = DynamicClient(client.ApiClient())
    found: dict[str, dict | None] = {}
    for document in documents:
        ref = object_ref(document)
        if ref not in found:
            try:
                found[ref] = lookup_labels(dynamic, document)
            except Exception as exc:  # noqa: BLE001 - an API error names the object it was about
                module.fail_json(msg=f"cannot read {ref}: {exc}")
    module.exit_json(changed=False, **classify(documents, found, module.params["instance"]))


if __name__ == "__main__":
    main()
