"""Filter plugin ``sentiment.platform.uninstall_order``: the objects of an installation, in the order to delete them.

teardown.yml finds every object carrying this installation's ownership labels; deleting them in the wrong
order leaves things behind or makes the API server wait: Flagger's children go with their Canary, an
aggregated APIService whose backend is gone stalls namespace deletion on discovery, and a namespace takes
everything in it along. Documentation: uninstall_order.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# Deleted first: the Canary (its primary Deployment, Services and HTTPRoute are its children), then the
# APIServices; cluster-wide objects come after the namespaces whose workloads used them.
FIRST = ("Canary", "APIService")
LAST = ("ClusterRoleBinding", "ClusterRole", "IngressClass", "GatewayClass", "CustomResourceDefinition")


def rank(obj: dict) -> int:
    kind, namespaced = obj["kind"], "namespace" in obj["metadata"]
    if kind in FIRST:
        return FIRST.index(kind)
    if namespaced:
        return len(FIRST)
    if kind == "Namespace":
        return len(FIRST) + 1
    return len(FIRST) + 2 + (LAST.index(kind) if kind in LAST else len(LAST))


def uninstall_order(objects: list[dict]) -> list[dict]:
    """The objects as references (apiVersion, kind, name, namespace) in deletion order; namespaced objects in
    one of the listed namespaces are left out (deleting the namespace deletes them)."""
    try:
        namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
        references = [
            {
                "apiVersion": o["apiVersion"],
                "kind": o["kind"],
                "metadata": {key: value for key, value in o["metadata"].items() if key in ("name", "namespace")},
            }
            for o in objects
            if o["kind"] in FIRST or o["metadata"].get("namespace") not in namespaces
        ]
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"not a list of Kubernetes objects: {exc}") from exc
    return sorted(
        references,
        key=lambda o: (rank(o), o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]),
    )


class FilterModule:
    def filters(self) -> dict:
        return {"uninstall_order": uninstall_order}
