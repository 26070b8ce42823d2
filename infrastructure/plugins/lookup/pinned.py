"""Lookup plugin ``sentiment.platform.pinned``: a version or image reference from the collection's versions.yml."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: pinned
author: sentiment-platform maintainers
short_description: Read a pinned version or image reference from the collection's versions.yml
description:
  - Every pinned version of the platform lives in one file, C(versions.yml) at the root of the
    C(sentiment.platform) collection. The roles' image defaults are this lookup, so a pin is changed in
    that one file; an inventory still overrides any role variable as usual.
options:
  _terms:
    description: Keys of versions.yml, for example C(traefik_image) or C(kubernetes_version).
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Show the pinned Traefik image
  ansible.builtin.debug:
    msg: "{{ lookup('sentiment.platform.pinned', 'traefik_image') }}"

- name: Kubernetes version and kind version at once
  ansible.builtin.debug:
    msg: "{{ query('sentiment.platform.pinned', 'kubernetes_version', 'kind_version') }}"
"""

RETURN = r"""
_raw:
  description: The pinned value of each key, in order.
  type: list
  elements: str
"""

from pathlib import Path

import yaml
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

# plugins/lookup/pinned.py -> the collection root.
VERSIONS_FILE = Path(__file__).resolve().parents[2] / "versions.yml"


def read_pins(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Every pin of versions.yml, as strings."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AnsibleLookupError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise AnsibleLookupError(f"{path} is not a mapping of pins")
    return {str(key): str(value) for key, value in data.items()}


class LookupModule(LookupBase):
    def run(self, terms: list, variables: dict | None = None, **kwargs) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        pins = read_pins()
        missing = [term for term in terms if term not in pins]
        if missing:
            raise AnsibleLookupError(
                f"not pinned in {VERSIONS_FILE.name}: {', '.join(missing)}; known: {', '.join(pins)}"
            )
        return [pins[term] for term in terms]
