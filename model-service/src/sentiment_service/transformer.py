"""The transformer variant: fine-tuned MiniLM as an int8 ONNX graph, scored by ONNX Runtime.

The artifact is a manifest (``model.json``) that names the graph and the tokenizer by sha256, so the
signature and the model version (the manifest's own hash) cover every byte that is scored. Texts are
tokenized (WordPiece, Rust), sorted by length and cut into sub-batches of at most ``batch_tokens``
padded tokens: a batch costs what its tokens cost, and one long text never pads a batch of short
ones. ONNX Runtime releases the GIL while it computes, so the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from .model import ARTIFACT_FILE, ModelLoadError, Scored, read_artifact

ARTIFACT_FORMAT = "sentiment-minilm-onnx/v1"
GRAPH_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
OUTPUT = "p_positive"
# Words for the drift monitor's unknown-token share: scikit-learn's default token pattern, as the
# TF-IDF variant counts them, so both variants report comparable input statistics.
WORD_PATTERN = r"(?u)\b\w\w+\b"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

log = logging.getLogger(__name__)


def _read_verified(model_dir: Path, entry: dict) -> bytes:
    name = entry["file"]
    if Path(name).name != name:
        raise ModelLoadError(f"{ARTIFACT_FILE} names a file outside the model directory: {name!r}")
    try:
        raw = (model_dir / name).read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {name}: {exc.strerror}") from exc
    if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
        raise ModelLoadError(f"{name} is not the file {ARTIFACT_FILE} names (sha256 differs)")
    return raw


def session_options(threads: int) -> ort.SessionOptions:
    """``threads`` intra-op threads (the pod's CPU limit), no inter-op pool, no spinning.

    Spinning workers busy-wait for the next op: on a CPU-limited pod they burn the quota that the
    event loop and the next batch need (and the kernel throttles the whole container for it)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def choose_providers(device: str) -> list[str]:
    """ONNX Runtime execution providers for ``device`` (cpu | cuda): CUDA when asked for and this build has
    it, else the CPU with a log line (the service still serves; ``model_info{device}`` says where)."""
    if device != "cuda":
        return [CPU]
    available = ort.get_available_providers()
    if CUDA not in available:
        log.warning("a GPU was asked for, but this onnxruntime lacks the CUDA provider (%s): CPU it is", available)
        return [CPU]
    # The GPU image carries CUDA and cuDNN as pip packages (nvidia-*): load them before the session does.
    ort.preload_dlls(directory="")
    return [CUDA, CPU]


def token_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Text indices grouped shortest first, each group's rows x longest row within ``budget`` padded
    tokens (a text longer than the budget alone in its group)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    for index in order:
        if groups and (len(groups[-1]) + 1) * lengths[index] <= budget:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


class TransformerModel:
    """Binary sentiment classifier; ``score_batch`` returns one :class:`Scored` per text."""

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        *,
        known_words: frozenset[str],
        word_pattern: str,
        batch_tokens: int,
        version: str,
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._known_words = known_words
        self._word_re = re.compile(word_pattern)
        self._batch_tokens = batch_tokens
        self.version = version
        self.execution_provider = session.get_providers()[0]

    @classmethod
    def load(
        cls, model_dir: Path, card: dict, *, threads: int, batch_tokens: int, device: str = "cpu"
    ) -> TransformerModel:
        """Load the manifest, check it against the card, and the graph and tokenizer against it."""
        raw, version = read_artifact(model_dir, card)
        try:
            manifest = json.loads(raw)
            if manifest.get("format") != ARTIFACT_FORMAT:
                raise ModelLoadError(f"unsupported artifact format {manifest.get('format')!r}")
            providers = choose_providers(device)
            # int8 for the CPU; the fp32 graph for CUDA, whose provider lacks the int8 kernels (its quantized
            # MatMuls would run on the CPU). The GPU image ships both, the CPU image the int8 one only.
            on_gpu = providers[0] == CUDA and "graph_cuda" in manifest
            graph = _read_verified(model_dir, manifest["graph_cuda" if on_gpu else "graph"])
            tokenizer = Tokenizer.from_str(_read_verified(model_dir, manifest["tokenizer"]).decode("utf-8"))
            tokenizer.no_padding()
            tokenizer.enable_truncation(int(manifest["max_tokens"]))
            session = ort.InferenceSession(graph, sess_options=session_options(threads), providers=providers)
            if device == "cuda" and session.get_providers()[0] != CUDA:
                # The CUDA provider exists but found no usable GPU (no device, no driver): ONNX Runtime fell back.
                log.warning("a GPU was asked for, but none is usable here: scoring on the CPU")
            return cls(
                session,
                tokenizer,
                known_words=frozenset(manifest["known_words"]),
                word_pattern=manifest["word_pattern"],
                batch_tokens=batch_tokens,
                version=version,
            )
        except (ValueError, KeyError, TypeError, ort.capi.onnxruntime_pybind11_state.Fail) as exc:
            raise ModelLoadError(f"{ARTIFACT_FILE} is not a valid {ARTIFACT_FORMAT} artifact: {exc}") from exc

    @property
    def device(self) -> str:
        return "cuda" if self.execution_provider == CUDA else "cpu"

    @property
    def summary(self) -> str:
        precision = "fp32" if self.execution_provider == CUDA else "int8"
        return f"MiniLM {precision} on {self.execution_provider}, {self._batch_tokens} tokens per model call"

    def predict_proba(self, texts: Sequence[str]) -> list[float]:
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encodings]
        probabilities = np.empty(len(texts), np.float32)
        for group in token_batches(lengths, self._batch_tokens):
            width = lengths[group[-1]]
            ids = np.zeros((len(group), width), np.int64)
            for row, index in enumerate(group):
                ids[row, : lengths[index]] = encodings[index].ids
            mask = (np.arange(width) < np.array([lengths[i] for i in group])[:, None]).astype(np.int64)
            probabilities[group] = self._session.run([OUTPUT], {"input_ids": ids, "attention_mask": mask})[0]
        return probabilities.tolist()

    def score_batch(self, texts: Sequence[str]) -> list[Scored]:
        scored = []
        known = self._known_words
        for text, p in zip(texts, self.predict_proba(texts), strict=True):
            words = self._word_re.findall(text.lower())
            scored.append(Scored(p, len(words), sum(1 for w in words if w not in known)))
        return scored
