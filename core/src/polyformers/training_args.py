"""``TrainingArguments``: every knob of the PyTorch ``Trainer``, with Transformers' names and defaults.

Both spellings of the evaluation strategy are accepted: ``eval_strategy`` (Transformers 4.41+ and
5) and ``evaluation_strategy`` (older 4.x scripts). Under ``torchrun`` the process rank and world
size come from the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``); the process group is
created by the Trainer when it first needs it.

Imports no framework at module level: building the arguments is cheap; ``device`` imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .trainer_utils import IntervalStrategy, SaveStrategy


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


@dataclass
class TrainingArguments:
    output_dir: str | None = None
    overwrite_output_dir: bool = False
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    eval_strategy: IntervalStrategy | str = "no"
    prediction_loss_only: bool = False
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    eval_accumulation_steps: int | None = None
    eval_delay: float = 0
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    num_train_epochs: float = 3.0
    max_steps: int = -1
    lr_scheduler_type: str = "linear"
    lr_scheduler_kwargs: dict | None = None
    warmup_ratio: float = 0.0
    warmup_steps: float = 0
    log_level: str = "passive"
    logging_dir: str | None = None
    logging_strategy: IntervalStrategy | str = "steps"
    logging_first_step: bool = False
    logging_steps: float = 500
    logging_nan_inf_filter: bool = True
    save_strategy: SaveStrategy | str = "steps"
    save_steps: float = 500
    save_total_limit: int | None = None
    save_safetensors: bool = True
    save_only_model: bool = False
    use_cpu: bool = False
    seed: int = 42
    data_seed: int | None = None
    bf16: bool = False
    fp16: bool = False
    local_rank: int = -1
    ddp_backend: str | None = None
    ddp_find_unused_parameters: bool | None = None
    ddp_timeout: int = 1800
    eval_steps: float | None = None
    dataloader_drop_last: bool = False
    dataloader_num_workers: int = 0
    dataloader_pin_memory: bool = True
    run_name: str | None = None
    disable_tqdm: bool | None = None
    remove_unused_columns: bool = True
    label_names: list[str] | None = None
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    ignore_data_skip: bool = False
    label_smoothing_factor: float = 0.0
    optim: str = "adamw_torch"
    report_to: str | list[str] | None = "none"
    gradient_checkpointing: bool = False
    gradient_checkpointing_kwargs: dict | None = None
    include_for_metrics: list[str] = field(default_factory=list)
    restore_callback_states_from_checkpoint: bool = False
    # Older 4.x spelling of eval_strategy; folded into it in __post_init__.
    evaluation_strategy: IntervalStrategy | str | None = None

    def __post_init__(self) -> None:
        if self.output_dir is None:
            self.output_dir = "trainer_output"  # Transformers 5's default
        self.output_dir = os.fspath(self.output_dir)
        if self.evaluation_strategy is not None:
            self.eval_strategy = self.evaluation_strategy
            self.evaluation_strategy = None
        self.eval_strategy = IntervalStrategy(self.eval_strategy)
        self.logging_strategy = IntervalStrategy(self.logging_strategy)
        self.save_strategy = SaveStrategy(self.save_strategy)
        if self.logging_dir is None:
            self.logging_dir = os.path.join(self.output_dir, "runs")
        if self.run_name is None:
            self.run_name = self.output_dir
        if self.disable_tqdm is None:
            self.disable_tqdm = False
        if self.report_to not in (None, "none", [], ["none"]):
            raise ValueError(
                f"report_to={self.report_to!r}: polyformers' Trainer logs to its log history, the console and "
                f"trainer_state.json only. Pass report_to='none', or add a TrainerCallback whose on_log sends the logs."
            )
        self._check_positive()
        if self.eval_strategy == IntervalStrategy.STEPS and not self.eval_steps:
            if self.logging_steps > 0:
                self.eval_steps = self.logging_steps
            else:
                raise ValueError("eval_strategy='steps' needs eval_steps (or logging_steps) > 0.")
        if self.load_best_model_at_end:
            self._check_load_best()
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = "loss"
        if self.save_strategy == SaveStrategy.BEST and self.metric_for_best_model is None:
            raise ValueError("save_strategy='best' needs metric_for_best_model (e.g. 'eval_loss' or 'accuracy').")
        if self.greater_is_better is None and self.metric_for_best_model is not None:
            self.greater_is_better = not self.metric_for_best_model.endswith("loss")
        if self.fp16:
            raise ValueError(
                "fp16=True: polyformers' Trainer trains in float32 or with bfloat16 autocast. Use bf16=True "
                "(CPUs with AVX-512 BF16 / AMX and Ampere+ GPUs run it natively)."
            )
        if self.optim not in ("adamw_torch", "adamw_torch_fused", "adamw_hf", "sgd"):
            raise ValueError(f"optim={self.optim!r} is not supported; choose 'adamw_torch', 'adamw_torch_fused' or 'sgd', or pass optimizers=(optimizer, scheduler) to the Trainer.")
        if self.local_rank == -1:
            self.local_rank = _env_int("LOCAL_RANK", -1)

    def _check_positive(self) -> None:
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.warmup_ratio < 0 or self.warmup_ratio > 1:
            raise ValueError(f"warmup_ratio must lie in [0, 1], got {self.warmup_ratio}.")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise ValueError(f"save_total_limit must be None or >= 1, got {self.save_total_limit}.")

    def _check_load_best(self) -> None:
        if self.save_strategy == SaveStrategy.BEST:
            return
        if self.eval_strategy != self.save_strategy.value:
            raise ValueError(
                f"load_best_model_at_end needs a checkpoint at every evaluation: eval_strategy "
                f"({self.eval_strategy.value!r}) and save_strategy ({self.save_strategy.value!r}) must match."
            )
        if self.eval_strategy == IntervalStrategy.STEPS and self.save_steps % self.eval_steps != 0:
            raise ValueError(
                f"load_best_model_at_end with step strategies needs save_steps ({self.save_steps}) to be a "
                f"multiple of eval_steps ({self.eval_steps})."
            )

    # --- processes and devices -----------------------------------------------------------------

    @property
    def world_size(self) -> int:
        return _env_int("WORLD_SIZE", 1)

    @property
    def process_index(self) -> int:
        return _env_int("RANK", 0)

    @property
    def local_process_index(self) -> int:
        return max(self.local_rank, 0)

    @property
    def should_save(self) -> bool:
        """Only the first process writes checkpoints and the final model."""
        return self.process_index == 0

    @property
    def should_log(self) -> bool:
        return self.process_index == 0

    @property
    def device(self) -> Any:
        import torch

        if not self.use_cpu and torch.cuda.is_available():
            return torch.device("cuda", self.local_process_index)
        return torch.device("cpu")

    @property
    def n_gpu(self) -> int:
        return 1 if self.device.type == "cuda" else 0

    @property
    def train_batch_size(self) -> int:
        return self.per_device_train_batch_size

    @property
    def eval_batch_size(self) -> int:
        return self.per_device_eval_batch_size

    def get_warmup_steps(self, num_training_steps: int) -> int:
        """``warmup_steps`` (an integer count, or a fraction of the run below 1, as Transformers 5
        reads it), else ``warmup_ratio`` of ``num_training_steps``."""
        if self.warmup_steps >= 1:
            return int(self.warmup_steps)
        ratio = self.warmup_steps if self.warmup_steps > 0 else self.warmup_ratio
        return math.ceil(num_training_steps * ratio)

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        result = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            result[f.name] = value.value if isinstance(value, (IntervalStrategy, SaveStrategy)) else value
        return result

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def __str__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"{type(self).__name__}({fields})"

    __repr__ = __str__
