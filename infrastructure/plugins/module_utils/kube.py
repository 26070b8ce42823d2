"""What the collection's Kubernetes-watching modules share: the connection options and one way to open
a module for them (as kubernetes.core's args_common does for its modules)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

try:
    from kubernetes import client, config
except ImportError:  # pragma: no cover - reported by kube_module
    client = config = None

# How a module reaches the cluster: the kubeconfig file and context (the current ones when unset).
CONNECTION_ARGS = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
}


def kube_module(argument_spec: dict) -> AnsibleModule:
    """An AnsibleModule with the connection options, its kubeconfig loaded (fails without the kubernetes
    package)."""
    module = AnsibleModule(argument_spec={**argument_spec, **CONNECTION_ARGS}, supports_check_mode=True)
    if client is None:
        module.fail_json(msg="the kubernetes Python package is required")
    config.load_kube_config(config_file=module.params["kubeconfig"], context=module.params["context"])
    return module
