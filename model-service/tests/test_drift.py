"""Drift statistics: PSI arithmetic, the bounded window, and that real shifted traffic separates
clearly from in-distribution traffic."""

from __future__ import annotations

import pytest
from svc import DATA_CACHE

from sentiment_service.drift import (
    CONFIDENCE_EDGES,
    TARGETS,
    DriftWindow,
    bin_index,
    psi,
    reference_profile,
    reference_shares,
)
from sentiment_service.model import Scored, SentimentModel
from sentiment_training.data import shifted_domains

# Thresholds documented in docs/monitoring.md, "Drift monitoring": below 0.1 stable, above 0.25 major shift.
STABLE = 0.1
MAJOR = 0.25


def test_psi_is_zero_for_identical_distributions_and_grows_with_shift() -> None:
    reference = [0.25, 0.25, 0.25, 0.25]
    assert psi(reference, reference) == 0.0
    mild = psi(reference, [0.3, 0.25, 0.25, 0.2])
    strong = psi(reference, [0.7, 0.1, 0.1, 0.1])
    assert 0 < mild < STABLE < MAJOR < strong


def test_psi_stays_finite_for_empty_bins() -> None:
    assert psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]) < 10


def test_bin_index_uses_left_closed_bins_and_an_open_last_bin() -> None:
    assert bin_index(CONFIDENCE_EDGES, 0.5) == 0
    assert bin_index(CONFIDENCE_EDGES, 0.5499) == 0
    assert bin_index(CONFIDENCE_EDGES, 0.55) == 1
    assert bin_index(CONFIDENCE_EDGES, 1.0) == len(CONFIDENCE_EDGES) - 1


def _uniform_reference() -> dict[str, list[float]]:
    profile = reference_profile([Scored(0.9, 10, 0), Scored(0.1, 10, 0)], ["x" * 60, "y" * 60])
    return reference_shares(profile)


def test_window_evicts_by_size() -> None:
    window = DriftWindow(_uniform_reference(), max_samples=5, max_age_s=1e9)
    window.add([Scored(0.9, 4, 0)] * 8, ["text"] * 8)
    assert window.stats().samples == 5


def test_window_evicts_by_age() -> None:
    now = [0.0]
    window = DriftWindow(_uniform_reference(), max_samples=100, max_age_s=60, clock=lambda: now[0])
    window.add([Scored(0.9, 4, 0)] * 3, ["text"] * 3)
    now[0] = 30.0
    window.add([Scored(0.2, 4, 1)] * 2, ["text"] * 2)
    assert window.stats().samples == 5
    now[0] = 61.0
    stats = window.stats()
    assert stats.samples == 2
    assert stats.mean_confidence == pytest.approx(0.8)
    now[0] = 200.0
    assert window.stats().samples == 0
    assert window.stats().mean_confidence is None


def test_reference_bins_must_match_the_service() -> None:
    profile = reference_profile([Scored(0.9, 10, 0)], ["text"])
    profile["confidence"]["edges"] = [0.5, 0.75]
    with pytest.raises(ValueError, match="confidence"):
        reference_shares(profile)


@pytest.fixture(scope="module")
def scores_by_traffic(model_dir, card, heldout) -> dict[str, dict[str, float]]:
    model = SentimentModel.load(model_dir)
    reference = reference_shares(card["reference"])
    traffic = {"in-distribution (held-out reviews)": [row["text"] for row in heldout][:1000]}
    for domain, corpus in shifted_domains(DATA_CACHE).items():
        traffic[domain] = corpus.texts[:1000]
    scores = {}
    for name, texts in traffic.items():
        window = DriftWindow(reference, max_samples=1000, max_age_s=1e9)
        window.add(model.score_batch(texts), texts)
        scores[name] = window.stats().psi
    return scores


def test_in_distribution_traffic_is_stable(scores_by_traffic) -> None:
    stable = scores_by_traffic["in-distribution (held-out reviews)"]
    assert set(stable) == set(TARGETS)
    assert max(stable.values()) < STABLE, stable


@pytest.mark.parametrize("domain", ["tweets", "news", "product_reviews"])
def test_other_domains_show_major_input_drift(scores_by_traffic, domain) -> None:
    shifted = scores_by_traffic[domain]
    stable = scores_by_traffic["in-distribution (held-out reviews)"]
    # Unknown vocabulary is the most consistent signal of a new domain; some statistic crosses "major".
    assert shifted["unknown_tokens"] > STABLE, shifted
    assert shifted["unknown_tokens"] > 5 * stable["unknown_tokens"]
    assert max(shifted.values()) > MAJOR, shifted
