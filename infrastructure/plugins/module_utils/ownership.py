"""Whose an object is, by its labels: what the ``sentiment.platform.ownership`` module and the
``sentiment.platform.ownership_of`` filter share."""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
INSTANCE = "app.kubernetes.io/instance"
PART_OF = "app.kubernetes.io/part-of"
MANAGER = "sentiment-platform"


def owner(labels: dict | None, instance: str) -> str:
    """'ours' when the labels name this installation (or a 1.x release of the platform, before ownership
    labels: part-of and no managed-by), else 'theirs'."""
    labels = labels or {}
    if labels.get(MANAGED_BY) == MANAGER:
        return "ours" if labels.get(INSTANCE) == instance else "theirs"
    if MANAGED_BY not in labels and labels.get(PART_OF) == MANAGER:
        return "ours"
    return "theirs"
