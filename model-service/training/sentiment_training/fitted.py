"""What fitting a model variant hands to ``train``: the served model, its reference, its card entries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sentiment_service.model import ScoringModel


@dataclass(frozen=True)
class Fitted:
    # The model exactly as the service scores it (compiled TF-IDF, int8 graph): every metric is of it.
    model: ScoringModel
    # P(positive) from the training-time reference (scikit-learn; the JAX forward pass): the parity target.
    reference: Callable[[Sequence[str]], np.ndarray]
    # Most any one text's P(positive) may differ from the reference, and the least share of texts whose
    # label must agree with it.
    parity_tolerance: float
    min_label_agreement: float
    min_accuracy: float
    seconds: float
    card: dict = field(default_factory=dict)
