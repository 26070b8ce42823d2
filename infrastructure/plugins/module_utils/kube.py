"""What the collection's Kubernetes-watching modules share: the connection options and one way to open
a module for them (as kubernetes.core's args_common does for its modules).

The options are documented once, in the doc fragment ``sentiment.platform.kube`` (plugins/doc_fragments/kube.py),
and the modules that take them form the action group ``kube`` (meta/runtime.yml), so that
``module_defaults: {group/sentiment.platform.kube: {...}}`` sets them for all at once."""

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
    package, or naming the kubeconfig and context it could not load)."""
    module = AnsibleModule(argument_spec={**argument_spec, **CONNECTION_ARGS}, supports_check_mode=True)
    if client is None:
        module.fail_json(msg="the kubernetes Python package is required")
    kubeconfig, context = module.params["kubeconfig"], module.params["context"]
    try:
        config.load_kube_config(config_file=kubeconfig, context=context or None)
    except (config.ConfigException, OSError, ValueError, TypeError) as exc:
        module.fail_json(
            msg=f"cannot load kubeconfig {kubeconfig or '(the default)'}, context {context or '(current)'}: {exc}",
            kubeconfig=kubeconfig,
            context=context,
        )
    return module
