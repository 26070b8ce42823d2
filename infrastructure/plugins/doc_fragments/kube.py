"""Doc fragment ``sentiment.platform.kube``: how the collection's Kubernetes modules reach the cluster.

One description of the options that ``plugins/module_utils/kube.py`` (CONNECTION_ARGS) adds to every module it
opens; a module names it with ``extends_documentation_fragment: [sentiment.platform.kube]``.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
---
requirements:
  - kubernetes (Python), the official client; the module reads the cluster's API with it.
notes:
  - Every module that takes these options belongs to the action group C(sentiment.platform.kube), so a play
    sets them once for all of them with C(module_defaults) and C(group/sentiment.platform.kube), as
    C(group/kubernetes.core.k8s) does for kubernetes.core's modules.
attributes:
  check_mode:
    description: The module only reads from the cluster, in check mode as in a normal run, and never reports C(changed).
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  action_group:
    description: C(module_defaults) for C(group/sentiment.platform.kube) set this module's options.
    support: full
    membership: [sentiment.platform.kube]
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file holding the cluster's address and credentials (C(~) is expanded).
      - Unset, the kubernetes client's default applies - the file C(KUBECONFIG) names, else C(~/.kube/config).
    type: path
  context:
    description:
      - Context of the kubeconfig to use (for a kind cluster C(kind-<name>)).
      - Unset or empty, the kubeconfig's current context.
    type: str
"""
