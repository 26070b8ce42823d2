"""Filter plugins ``sentiment.platform.ownership_conflict`` (one line of site.yml's ownership report) and
``sentiment.platform.ownership_of`` (whose an object is, by its labels).

The ``sentiment.platform.ownership`` module finds the objects a run would write that exist and are not this
installation's; this filter turns each into the line the run stops with: the object, who it belongs to, and
the first inventory switch whose pattern matches it. Documentation: ownership_conflict.yml and ownership_of.yml
beside this file.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.sentiment.platform.plugins.module_utils.ownership import owner


def ownership_conflict(conflict: dict, switches: list[dict]) -> str:
    """'- Kind/ns/name (owner): switch' for a conflict of the ownership module."""
    try:
        ref = conflict["object"]
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"not a conflict of sentiment.platform.ownership: {conflict!r}") from exc
    if conflict.get("managed_by"):
        owner = f"managed by {conflict['managed_by']}, instance {conflict.get('instance') or '(none)'}"
    else:
        owner = "no app.kubernetes.io/managed-by label"
    switch = next((s["switch"] for s in switches if re.search(s["match"], ref)), None)
    line = f"- {ref} ({owner})"
    return f"{line}: {switch.strip()}" if switch else line


def ownership_of(labels: dict | None, instance: str) -> str:
    """'ours' when an object's labels make it this installation's, else 'theirs'."""
    if labels is not None and not isinstance(labels, dict):
        raise AnsibleFilterError(f"ownership_of takes an object's labels (a dict), not {labels!r}")
    return owner(labels, instance)


class FilterModule:
    def filters(self) -> dict:
        return {"ownership_conflict": ownership_conflict, "ownership_of": ownership_of}
