"""Small shared pieces of the Trainer: strategies, result tuples, seeding, checkpoint folders.

Imports no framework at module level (``set_seed`` imports torch when called), so
``polyformers.IntervalStrategy`` and friends stay cheap.
"""

from __future__ import annotations

import os
import random
import re
from typing import Any, NamedTuple

import numpy as np

from .tokenization_utils_base import ExplicitEnum

PREFIX_CHECKPOINT_DIR = "checkpoint"
# A checkpoint is written under this prefix and renamed into place when complete; a folder with
# it is an interrupted save, never resumed from.
TMP_CHECKPOINT_PREFIX = "tmp-checkpoint"
_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


class IntervalStrategy(ExplicitEnum):
    NO = "no"
    STEPS = "steps"
    EPOCH = "epoch"


class SaveStrategy(ExplicitEnum):
    NO = "no"
    STEPS = "steps"
    EPOCH = "epoch"
    BEST = "best"


class EvalPrediction:
    """What ``compute_metrics`` receives: ``predictions`` and ``label_ids`` (numpy arrays or tuples of
    them), and ``inputs`` when ``include_for_metrics`` asks. Unpacks as ``preds, labels = p``."""

    def __init__(self, predictions: Any, label_ids: Any, inputs: Any = None, losses: Any = None) -> None:
        self.predictions = predictions
        self.label_ids = label_ids
        self.inputs = inputs
        self.losses = losses
        extras = tuple(e for e in (inputs, losses) if e is not None)
        self._elements = (predictions, label_ids, *extras)

    def __iter__(self) -> Any:
        return iter(self._elements)

    def __getitem__(self, index: int) -> Any:
        return self._elements[index]

    def __len__(self) -> int:
        return len(self._elements)


class TrainOutput(NamedTuple):
    global_step: int
    training_loss: float
    metrics: dict[str, float]


class PredictionOutput(NamedTuple):
    predictions: Any
    label_ids: Any
    metrics: dict[str, float] | None


class EvalLoopOutput(NamedTuple):
    predictions: Any
    label_ids: Any
    metrics: dict[str, float] | None
    num_samples: int


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, numpy and torch (all devices), as Transformers' ``set_seed`` does."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)


def get_last_checkpoint(folder: str | os.PathLike) -> str | None:
    """The ``checkpoint-<step>`` folder of ``folder`` with the highest step, or None.

    Interrupted saves (``tmp-checkpoint-*``) and files are never returned.
    """
    folder = os.fspath(folder)
    steps = []
    for name in os.listdir(folder):
        match = _CHECKPOINT_RE.match(name)
        if match and os.path.isdir(os.path.join(folder, name)):
            steps.append((int(match.group(1)), name))
    return os.path.join(folder, max(steps)[1]) if steps else None


def sorted_checkpoints(folder: str | os.PathLike) -> list[str]:
    """The ``checkpoint-<step>`` folders of ``folder``, oldest step first."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = _CHECKPOINT_RE.match(name)
        if match and os.path.isdir(os.path.join(folder, name)):
            found.append((int(match.group(1)), os.path.join(folder, name)))
    return [path for _, path in sorted(found)]


def speed_metrics(split: str, start_time: float, end_time: float, num_samples: int | None = None, num_steps: int | None = None) -> dict[str, float]:
    """``<split>_runtime``, ``<split>_samples_per_second``, ``<split>_steps_per_second``."""
    runtime = end_time - start_time
    result = {f"{split}_runtime": round(runtime, 4)}
    if runtime > 0:
        if num_samples is not None:
            result[f"{split}_samples_per_second"] = round(num_samples / runtime, 3)
        if num_steps is not None:
            result[f"{split}_steps_per_second"] = round(num_steps / runtime, 3)
    return result


def denumpify(value: Any) -> Any:
    """numpy scalars and 0-d arrays as Python numbers (for JSON logs)."""
    if isinstance(value, dict):
        return {k: denumpify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(denumpify(v) for v in value)
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value
