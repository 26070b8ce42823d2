"""Drift monitoring: recent predictions compared with the training-time reference.

Four distributions are tracked, each on fixed bins so that training and serving bin identically:

* ``label``: shares of predicted labels (output drift; a silent class flip shows here first);
* ``confidence``: the probability of the predicted label, 0.5 to 1.0 (output drift);
* ``text_length``: characters per text (input drift: different kind of traffic);
* ``unknown_tokens``: share of a text's word tokens missing from the training vocabulary
  (input drift: new vocabulary, other domain or language).

The statistic is the Population Stability Index, ``PSI = sum((a - e) * ln(a / e))`` over bins,
with ``e`` the reference share and ``a`` the window share, each floored at ``PSI_FLOOR`` so
empty bins stay finite. Conventional reading: below 0.1 stable, 0.1-0.25 moderate shift,
above 0.25 major shift. PSI is symmetric in spirit, cheap, needs no scipy and is the metric
risk teams already know.

The request path only appends one record to a bounded window (O(1)); the scores are computed
when Prometheus scrapes ``/metrics``.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .model import Scored

LABELS = ("negative", "positive")
CONFIDENCE_EDGES = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
TEXT_LENGTH_EDGES = (0, 25, 50, 75, 100, 125, 150, 200, 300, 500)
UNKNOWN_SHARE_EDGES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5)
PSI_FLOOR = 1e-4
TARGETS = ("label", "confidence", "text_length", "unknown_tokens")


def bin_index(edges: Sequence[float], value: float) -> int:
    """Index of the bin ``[edges[i], edges[i+1])`` holding value; the last bin is open-ended."""
    return max(0, bisect_right(edges, value) - 1)


def _bins(scored: Scored, text_length: int) -> tuple[int, int, int, int]:
    return (
        1 if scored.label == "positive" else 0,
        bin_index(CONFIDENCE_EDGES, scored.confidence),
        bin_index(TEXT_LENGTH_EDGES, text_length),
        bin_index(UNKNOWN_SHARE_EDGES, scored.unknown_token_share),
    )


def _sizes() -> tuple[int, int, int, int]:
    return (len(LABELS), len(CONFIDENCE_EDGES), len(TEXT_LENGTH_EDGES), len(UNKNOWN_SHARE_EDGES))


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def psi(reference: Sequence[float], actual: Sequence[float]) -> float:
    """Population Stability Index between two share vectors over the same bins."""
    score = 0.0
    for expected_share, actual_share in zip(reference, actual, strict=True):
        e = max(expected_share, PSI_FLOOR)
        a = max(actual_share, PSI_FLOOR)
        score += (a - e) * math.log(a / e)
    return score


def reference_profile(scored: Sequence[Scored], texts: Sequence[str]) -> dict:
    """The distributions of held-out predictions, saved in the model card at training time."""
    counts = [[0] * size for size in _sizes()]
    for item, text in zip(scored, texts, strict=True):
        for target, index in enumerate(_bins(item, len(text))):
            counts[target][index] += 1
    n = len(scored)
    return {
        "n": n,
        "label_shares": dict(zip(LABELS, _shares(counts[0]), strict=True)),
        "confidence": {"edges": list(CONFIDENCE_EDGES), "shares": _shares(counts[1])},
        "text_length": {"edges": list(TEXT_LENGTH_EDGES), "shares": _shares(counts[2])},
        "unknown_tokens": {"edges": list(UNKNOWN_SHARE_EDGES), "shares": _shares(counts[3])},
        "mean_confidence": sum(s.confidence for s in scored) / n if n else 0.0,
        "mean_unknown_token_share": sum(s.unknown_token_share for s in scored) / n if n else 0.0,
    }


def reference_shares(profile: Mapping) -> dict[str, list[float]]:
    """The card's reference as share vectors per target; checks the bins match this code's."""
    for target, edges in (
        ("confidence", CONFIDENCE_EDGES),
        ("text_length", TEXT_LENGTH_EDGES),
        ("unknown_tokens", UNKNOWN_SHARE_EDGES),
    ):
        if tuple(profile[target]["edges"]) != edges:
            raise ValueError(f"reference bins for {target} differ from the service's")
    return {
        "label": [profile["label_shares"][label] for label in LABELS],
        "confidence": list(profile["confidence"]["shares"]),
        "text_length": list(profile["text_length"]["shares"]),
        "unknown_tokens": list(profile["unknown_tokens"]["shares"]),
    }


@dataclass(frozen=True)
class WindowStats:
    samples: int
    mean_confidence: float | None
    psi: dict[str, float] = field(default_factory=dict)


class DriftWindow:
    """Bounded window of recent predictions with running per-bin counts.

    Holds at most ``max_samples`` records and none older than ``max_age_s`` seconds.
    Not thread-safe: the service calls it from its event loop only.
    """

    def __init__(
        self,
        reference: Mapping[str, Sequence[float]],
        max_samples: int,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reference = {target: list(reference[target]) for target in TARGETS}
        self._max_samples = max_samples
        self._max_age_s = max_age_s
        self._clock = clock
        self._records: deque[tuple[float, float, tuple[int, int, int, int]]] = deque()
        self._counts = [[0] * size for size in _sizes()]
        self._confidence_sum = 0.0

    def add(self, scored: Iterable[Scored], texts: Iterable[str]) -> None:
        now = self._clock()
        for item, text in zip(scored, texts, strict=True):
            bins = _bins(item, len(text))
            self._records.append((now, item.confidence, bins))
            self._confidence_sum += item.confidence
            for target, index in enumerate(bins):
                self._counts[target][index] += 1
        self._evict(now)

    def _evict(self, now: float) -> None:
        oldest_allowed = now - self._max_age_s
        records = self._records
        while records and (len(records) > self._max_samples or records[0][0] < oldest_allowed):
            _, confidence, bins = records.popleft()
            self._confidence_sum -= confidence
            for target, index in enumerate(bins):
                self._counts[target][index] -= 1

    def stats(self) -> WindowStats:
        self._evict(self._clock())
        n = len(self._records)
        if n == 0:
            return WindowStats(0, None, {})
        scores = {
            target: psi(self._reference[target], _shares(self._counts[position]))
            for position, target in enumerate(TARGETS)
        }
        return WindowStats(n, self._confidence_sum / n, scores)
