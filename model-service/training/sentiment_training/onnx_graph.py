"""Write a BERT-style encoder with a sentiment head as an ONNX graph, straight from its weights.

No PyTorch and no exporter: the graph is spelled out node by node from the same weight names the
fine-tuning (``minilm.py``) trains, so the exported graph and the training-time forward pass are the
same arithmetic (``minilm.py`` checks their outputs agree on every held-out text before it writes an
artifact). Inputs ``input_ids`` and ``attention_mask`` (int64, batch x tokens); output ``p_positive``
(float32, batch): mean pooling over the unmasked tokens, then a logistic head.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization is a standard operator from opset 17
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "p_positive"


class _GraphWriter:
    def __init__(self) -> None:
        self.initializers: list[onnx.TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value: np.ndarray | float, prefix: str = "const") -> str:
        name = self._name(prefix)
        array = np.asarray(value, dtype=np.float32) if isinstance(value, float) else np.asarray(value)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, inputs: list[str], **attributes: object) -> str:
        output = self._name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [output], name=output, **attributes))
        return output


def encoder_graph(weights: Mapping[str, np.ndarray], *, layers: int, heads: int, epsilon: float) -> onnx.ModelProto:
    """The ONNX model of ``minilm.forward`` (inference mode) for ``weights`` (float32 numpy arrays)."""
    g = _GraphWriter()
    w = {name: np.asarray(value, dtype=np.float32) for name, value in weights.items()}
    hidden = w["embeddings.word_embeddings.weight"].shape[1]
    head_dim = hidden // heads

    def linear(x: str, prefix: str) -> str:
        kernel = g.const(np.ascontiguousarray(w[f"{prefix}.weight"].T), prefix + ".kernel")
        return g.op("Add", [g.op("MatMul", [x, kernel]), g.const(w[f"{prefix}.bias"], prefix + ".bias")])

    def layer_norm(x: str, prefix: str) -> str:
        scale, bias = g.const(w[f"{prefix}.weight"], prefix + ".scale"), g.const(w[f"{prefix}.bias"], prefix + ".bias")
        return g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=epsilon)

    ids, mask = INPUTS
    int64 = np.int64
    n_tokens = g.op("Gather", [g.op("Shape", [ids]), g.const(np.array(1, int64))], axis=0)
    positions = g.op("Range", [g.const(np.array(0, int64)), n_tokens, g.const(np.array(1, int64))])
    # Token type 0 everywhere (single-segment input): folded into the position table.
    positional = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    words = g.op("Gather", [g.const(w["embeddings.word_embeddings.weight"], "word_embeddings"), ids], axis=0)
    x = g.op("Add", [words, g.op("Gather", [g.const(positional, "position_embeddings"), positions], axis=0)])
    x = layer_norm(x, "embeddings.LayerNorm")

    mask_f = g.op("Cast", [mask], to=TensorProto.FLOAT)
    # Additive attention bias: 0 for real tokens, -10000 for padding; shaped [batch, 1, 1, tokens].
    attention_bias = g.op("Mul", [g.op("Sub", [g.const(1.0), mask_f]), g.const(-1e4)])
    attention_bias = g.op("Unsqueeze", [attention_bias, g.const(np.array([1, 2], int64))])
    split_heads = g.const(np.array([0, 0, heads, head_dim], int64))
    merge_heads = g.const(np.array([0, 0, hidden], int64))
    scale = g.const(float(1 / np.sqrt(head_dim)))
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = g.op(
            "Transpose", [g.op("Reshape", [linear(x, f"{p}.attention.self.query"), split_heads])], perm=[0, 2, 1, 3]
        )
        k = g.op("Transpose", [g.op("Reshape", [linear(x, f"{p}.attention.self.key"), split_heads])], perm=[0, 2, 3, 1])
        v = g.op(
            "Transpose", [g.op("Reshape", [linear(x, f"{p}.attention.self.value"), split_heads])], perm=[0, 2, 1, 3]
        )
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), attention_bias])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(
            g.op("Add", [linear(context, f"{p}.attention.output.dense"), x]), f"{p}.attention.output.LayerNorm"
        )
        h = linear(x, f"{p}.intermediate.dense")
        # Exact GELU, as BERT trains it: 0.5 h (1 + erf(h / sqrt 2)).
        erf = g.op("Erf", [g.op("Div", [h, g.const(float(np.sqrt(2)))])])
        h = g.op("Mul", [g.op("Mul", [h, g.const(0.5)]), g.op("Add", [g.const(1.0), erf])])
        x = layer_norm(g.op("Add", [linear(h, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")

    token_mask = g.op("Unsqueeze", [mask_f, g.const(np.array([2], int64))])
    summed = g.op("ReduceSum", [g.op("Mul", [x, token_mask]), g.const(np.array([1], int64))], keepdims=0)
    counted = g.op("ReduceSum", [token_mask, g.const(np.array([1], int64))], keepdims=0)
    pooled = g.op("Div", [summed, g.op("Max", [counted, g.const(1e-9)])])
    head = g.const(w["head.weight"].reshape(hidden, 1), "head.weight")
    logit = g.op("Add", [g.op("MatMul", [pooled, head]), g.const(w["head.bias"].reshape(1), "head.bias")])
    g.nodes.append(
        helper.make_node("Sigmoid", [g.op("Squeeze", [logit, g.const(np.array([1], int64))])], [OUTPUT], name=OUTPUT)
    )

    graph = helper.make_graph(
        g.nodes,
        "sentiment-minilm",
        [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"]) for name in INPUTS],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch"])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sentiment_training")
    model.ir_version = 8  # readable by every onnxruntime release since 1.10
    onnx.checker.check_model(model)
    return model
