"""Filter plugin ``sentiment.platform.ownership_conflict``: one line of site.yml's ownership report.

The ``sentiment.platform.ownership`` module finds the objects a run would write that exist and are not this
installation's; this filter turns each into the line the run stops with: the object, who it belongs to, and
the first inventory switch whose pattern matches it. Documentation: ownership_conflict.yml beside this file.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError


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


class FilterModule:
    def filters(self) -> dict:
        return {"ownership_conflict": ownership_conflict}
