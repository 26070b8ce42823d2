"""The served model: TF-IDF n-grams + logistic regression, scored from a compiled artifact.

Training (``sentiment_training``) fits a scikit-learn pipeline and compiles it into
``model.json``: per n-gram its IDF weight and its logistic-regression coefficient.
Serving needs only the Python standard library, so the runtime image carries no
NumPy/SciPy/scikit-learn (hundreds of MB) and starts in well under a second.
``tests/test_model.py`` proves the probabilities equal scikit-learn's
``predict_proba`` on every held-out text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from operator import mul
from pathlib import Path
from typing import Protocol

ARTIFACT_FORMAT = "sentiment-linear-text/v1"
ARTIFACT_FILE = "model.json"
CARD_FILE = "model_card.json"
DEFAULT_WORD_CACHE_SIZE = 50_000


class ModelLoadError(RuntimeError):
    """The artifact is missing, malformed, or does not match its model card."""


@dataclass(frozen=True, slots=True)
class Scored:
    """One text's prediction plus the input statistics the drift monitor needs."""

    p_positive: float
    n_word_tokens: int
    n_unknown_tokens: int

    @property
    def label(self) -> str:
        return "positive" if self.p_positive >= 0.5 else "negative"

    @property
    def confidence(self) -> float:
        """Probability of the predicted label: 0.5 is a coin toss, 1.0 is certain."""
        return max(self.p_positive, 1.0 - self.p_positive)

    @property
    def unknown_token_share(self) -> float:
        return self.n_unknown_tokens / self.n_word_tokens if self.n_word_tokens else 0.0


def word_ngrams(tokens: list[str], ngram_range: tuple[int, int]) -> list[str]:
    """scikit-learn's word n-grams: the tokens' n-grams joined by a space."""
    low, high = ngram_range
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), high + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


def char_wb_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """scikit-learn's ``analyzer="char_wb"``: character n-grams inside space-padded words."""
    low, high = ngram_range
    grams: list[str] = []
    append = grams.append
    for word in text.lower().split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            if n >= length:
                # scikit-learn counts a word shorter than n once, then stops growing n.
                append(padded)
                break
            for offset in range(length - n + 1):
                append(padded[offset : offset + n])
    return grams


class _Block:
    """One TF-IDF vectorizer of the feature union, with its slice of the coefficients."""

    def __init__(
        self,
        analyzer: str,
        ngram_range: tuple[int, int],
        token_re: re.Pattern[str] | None,
        weights: dict[str, tuple[float, float]],
        word_cache_size: int,
    ) -> None:
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.token_re = token_re
        self.index = {gram: i for i, gram in enumerate(weights)}
        # Precomputed per n-gram so that the common case (an n-gram seen once in a text,
        # sublinear tf = 1) sums in C with map() instead of a Python loop.
        self.idf_squared = [idf * idf for idf, _ in weights.values()]
        self.idf_coef = [idf * coef for idf, coef in weights.values()]
        # char_wb n-grams never cross a word boundary, so a text's n-grams are the union of its
        # words' n-grams: cache each word's known n-gram ids (words repeat, per Zipf's law).
        self._word_feature_ids = lru_cache(maxsize=word_cache_size)(self._char_ids_of_word)

    def __len__(self) -> int:
        return len(self.index)

    def _char_ids_of_word(self, word: str) -> tuple[int, ...]:
        index = self.index
        ids = (index.get(gram) for gram in char_wb_ngrams(word, self.ngram_range))
        return tuple(i for i in ids if i is not None)

    def feature_ids(self, lowered: str, tokens: list[str]) -> list[int]:
        if self.analyzer == "word":
            index = self.index
            ids = (index.get(gram) for gram in word_ngrams(tokens, self.ngram_range))
            return [i for i in ids if i is not None]
        ids: list[int] = []
        for word in lowered.split():
            ids.extend(self._word_feature_ids(word))
        return ids

    def contribution(self, feature_ids: list[int]) -> float:
        """coef . l2_normalise(sublinear_tf * idf) for the known n-grams of one text.

        With tf = 1 + ln(count): squares = sum(tf^2 idf^2), dot = sum(tf idf coef). Summed first as
        if every count were 1, then corrected for the few n-grams that repeat.
        """
        counts = Counter(feature_ids)
        squares = sum(map(self.idf_squared.__getitem__, counts))
        dot = sum(map(self.idf_coef.__getitem__, counts))
        if len(counts) != len(feature_ids):
            repeated = [i for i, n in counts.items() if n > 1]
            repeats = list(map(counts.__getitem__, repeated))
            squares += sum(map(mul, map(_tf_squared_excess, repeats), map(self.idf_squared.__getitem__, repeated)))
            dot += sum(map(mul, map(_tf_excess, repeats), map(self.idf_coef.__getitem__, repeated)))
        return dot / math.sqrt(squares) if squares else 0.0


class ScoringModel(Protocol):
    """What the service needs of a model variant (TF-IDF here, MiniLM in ``transformer``)."""

    version: str

    @property
    def summary(self) -> str: ...

    @property
    def device(self) -> str:
        """Where it scores: cpu, or cuda (the ``device`` label of ``model_info``)."""
        ...

    def score_batch(self, texts: Sequence[str]) -> list[Scored]: ...

    def predict_proba(self, texts: Sequence[str]) -> list[float]: ...


class SentimentModel:
    """Binary sentiment classifier; ``predict_proba`` returns P(positive) per text."""

    def __init__(self, blocks: Sequence[_Block], intercept: float, version: str) -> None:
        self._blocks = tuple(blocks)
        self._intercept = intercept
        self.version = version
        words = [b for b in self._blocks if b.analyzer == "word"]
        if not words:
            raise ModelLoadError("artifact has no word block; the unknown-token statistic needs one")
        if len({b.token_re.pattern for b in words if b.token_re}) != 1:
            raise ModelLoadError("word blocks must share one token pattern")
        self._token_re: re.Pattern[str] = words[0].token_re  # type: ignore[assignment]
        # Unigram vocabulary: the tokens the model has seen on their own.
        self._known_tokens = frozenset(g for b in words for g in b.index if " " not in g)

    @classmethod
    def load(
        cls, model_dir: Path, word_cache_size: int = DEFAULT_WORD_CACHE_SIZE, card: dict | None = None
    ) -> SentimentModel:
        """Load ``model.json``; refuse it unless its sha256 matches the model card (``card``, if the
        caller read it already, else ``model_card.json``). The version is the artifact's own content
        hash (its first 12 hex digits), never a label read from a file: a rewritten artifact cannot
        pass for the original, and the card must name the same version.

        Error messages name files, not paths: they reach clients through ``/ready``."""
        card = load_card(model_dir) if card is None else card
        raw, version = read_artifact(model_dir, card)
        try:
            return cls.from_artifact(json.loads(raw), version, word_cache_size)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{ARTIFACT_FILE} is not a valid {ARTIFACT_FORMAT} artifact: {exc}") from exc

    @classmethod
    def from_artifact(
        cls, artifact: dict, version: str, word_cache_size: int = DEFAULT_WORD_CACHE_SIZE
    ) -> SentimentModel:
        if artifact.get("format") != ARTIFACT_FORMAT:
            raise ModelLoadError(f"unsupported artifact format {artifact.get('format')!r}")
        blocks = []
        for spec in artifact["blocks"]:
            analyzer = spec["analyzer"]
            if analyzer not in ("word", "char_wb"):
                raise ModelLoadError(f"unsupported analyzer {analyzer!r}")
            low, high = spec["ngram_range"]
            token_re = re.compile(spec["token_pattern"]) if analyzer == "word" else None
            weights = {gram: (float(idf), float(coef)) for gram, (idf, coef) in spec["features"].items()}
            blocks.append(_Block(analyzer, (int(low), int(high)), token_re, weights, word_cache_size))
        return cls(blocks, float(artifact["intercept"]), version)

    @property
    def n_features(self) -> int:
        return sum(len(b) for b in self._blocks)

    @property
    def summary(self) -> str:
        return f"TF-IDF + logistic regression, {self.n_features} features"

    @property
    def device(self) -> str:
        return "cpu"

    def score(self, text: str) -> Scored:
        lowered = text.lower()
        tokens = self._token_re.findall(lowered)
        decision = self._intercept
        for block in self._blocks:
            decision += block.contribution(block.feature_ids(lowered, tokens))
        known = self._known_tokens
        unknown = sum(1 for token in tokens if token not in known)
        return Scored(_sigmoid(decision), len(tokens), unknown)

    def score_batch(self, texts: Sequence[str]) -> list[Scored]:
        return [self.score(text) for text in texts]

    def predict_proba(self, texts: Sequence[str]) -> list[float]:
        """P(positive) for each text, in order (scikit-learn's ``predict_proba[:, 1]``)."""
        return [self.score(text).p_positive for text in texts]


def read_artifact(model_dir: Path, card: dict) -> tuple[bytes, str]:
    """``model.json``'s bytes and the model version (its sha256's first 12 hex digits), refused unless the
    card names the same sha256 and version. Shared by both variants (for MiniLM, the manifest)."""
    try:
        raw = (model_dir / ARTIFACT_FILE).read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {ARTIFACT_FILE}: {exc.strerror}") from exc
    expected = card.get("artifact", {}).get("sha256")
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise ModelLoadError(f"{ARTIFACT_FILE} has sha256 {actual}, but the model card expects {expected}")
    version = actual[:12]
    if card.get("model_version") != version:
        raise ModelLoadError(f"the model card names version {card.get('model_version')!r}, the artifact is {version}")
    return raw, version


def load_card(model_dir: Path) -> dict:
    try:
        card = json.loads((model_dir / CARD_FILE).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelLoadError(f"cannot read the model card {CARD_FILE}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ModelLoadError(f"the model card {CARD_FILE} is not JSON: {exc}") from exc
    if not isinstance(card, dict) or "model_version" not in card:
        raise ModelLoadError(f"the model card {CARD_FILE} lacks model_version")
    return card


@cache
def _tf_excess(count: int) -> float:
    """Sublinear tf minus the tf of a single occurrence: (1 + ln count) - 1."""
    return math.log(count)


@cache
def _tf_squared_excess(count: int) -> float:
    tf = 1.0 + math.log(count)
    return tf * tf - 1.0


def _sigmoid(x: float) -> float:
    # Same as scipy.special.expit, stable for large |x|.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
