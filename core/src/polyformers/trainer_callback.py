"""The Trainer's state, its control flags, and callbacks (Transformers' names and event order).

``TrainerState`` is what ``trainer_state.json`` holds in every checkpoint; ``TrainerControl``
is what callbacks set to ask for a log, an evaluation, a save or a stop. The default flow
(``DefaultFlowCallback``) turns the strategies of ``TrainingArguments`` into those flags.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .io_utils import atomic_write_text
from .trainer_utils import IntervalStrategy, SaveStrategy
from .training_args import TrainingArguments

logger = logging.getLogger(__name__)


@dataclass
class TrainerState:
    epoch: float | None = None
    global_step: int = 0
    max_steps: int = 0
    logging_steps: float = 500
    eval_steps: float = 500
    save_steps: float = 500
    train_batch_size: int | None = None
    num_train_epochs: int = 0
    num_input_tokens_seen: int = 0
    total_flos: float = 0
    log_history: list[dict[str, float]] = field(default_factory=list)
    best_metric: float | None = None
    best_global_step: int | None = None
    best_model_checkpoint: str | None = None
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    stateful_callbacks: dict[str, Any] = field(default_factory=dict)

    def save_to_json(self, json_path: str) -> None:
        text = json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"
        atomic_write_text(json_path, text)

    @classmethod
    def load_from_json(cls, json_path: str) -> "TrainerState":
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class TrainerControl:
    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False

    def _new_training(self) -> None:
        self.should_training_stop = False

    def _new_epoch(self) -> None:
        self.should_epoch_stop = False

    def _new_step(self) -> None:
        self.should_save = False
        self.should_evaluate = False
        self.should_log = False


class TrainerCallback:
    """Override any event; each gets ``(args, state, control, **kwargs)`` with ``model``,
    ``optimizer``, ``lr_scheduler``, ``train_dataloader``, ``eval_dataloader``, ``processing_class``
    in ``kwargs``, plus ``logs`` (on_log) and ``metrics`` (on_evaluate, on_predict). Returning a
    ``TrainerControl`` replaces the control flags."""

    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_substep_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_predict(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...
    def on_prediction_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> Any: ...


class ExportableState:
    """A callback whose state is saved in ``trainer_state.json`` and restored on resume."""

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ExportableState":
        instance = cls(**state["args"])
        for key, value in state["attributes"].items():
            setattr(instance, key, value)
        return instance


class CallbackHandler(TrainerCallback):
    """Calls every callback in order for each event."""

    def __init__(self, callbacks: list, model: Any, processing_class: Any, optimizer: Any, lr_scheduler: Any) -> None:
        self.callbacks: list[TrainerCallback] = []
        for cb in callbacks:
            self.add_callback(cb)
        self.model = model
        self.processing_class = processing_class
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.train_dataloader = None
        self.eval_dataloader = None

    def add_callback(self, callback: Any) -> None:
        cb = callback() if isinstance(callback, type) else callback
        if type(cb) in {type(c) for c in self.callbacks}:
            logger.warning("A %s is already among the callbacks; adding a second one.", type(cb).__name__)
        self.callbacks.append(cb)

    def pop_callback(self, callback: Any) -> Any:
        for cb in self.callbacks:
            if cb is callback or (isinstance(callback, type) and isinstance(cb, callback)):
                self.callbacks.remove(cb)
                return cb
        return None

    def remove_callback(self, callback: Any) -> None:
        self.pop_callback(callback)

    def call_event(self, event: str, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> TrainerControl:
        for callback in self.callbacks:
            result = getattr(callback, event)(
                args, state, control,
                model=self.model, processing_class=self.processing_class, optimizer=self.optimizer,
                lr_scheduler=self.lr_scheduler, train_dataloader=self.train_dataloader,
                eval_dataloader=self.eval_dataloader, **kwargs,
            )
            if result is not None:
                control = result
        return control

    def __getattribute__(self, name: str) -> Any:
        # on_* events dispatch to every callback.
        if name.startswith("on_"):
            return lambda args, state, control, **kw: self.call_event(name, args, state, control, **kw)
        return super().__getattribute__(name)


def _every(interval: float, max_steps: int) -> int:
    """A step interval given as a count, or (below 1) as a fraction of ``max_steps``."""
    return math.ceil(max_steps * interval) if interval < 1 else int(interval)


class DefaultFlowCallback(TrainerCallback):
    """Sets log / evaluate / save flags from the strategies, and stops at ``max_steps``."""

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> TrainerControl:
        if state.global_step == 1 and args.logging_first_step:
            control.should_log = True
        if args.logging_strategy == IntervalStrategy.STEPS and state.global_step % _every(args.logging_steps, state.max_steps) == 0:
            control.should_log = True
        if (
            args.eval_strategy == IntervalStrategy.STEPS
            and state.global_step % _every(args.eval_steps, state.max_steps) == 0
            and args.eval_delay <= state.global_step
        ):
            control.should_evaluate = True
        if args.save_strategy == SaveStrategy.STEPS and state.global_step % _every(args.save_steps, state.max_steps) == 0:
            control.should_save = True
        if state.global_step >= state.max_steps:
            control.should_training_stop = True
            if args.save_strategy == SaveStrategy.STEPS:
                control.should_save = True
        return control

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> TrainerControl:
        if args.logging_strategy == IntervalStrategy.EPOCH:
            control.should_log = True
        if args.eval_strategy == IntervalStrategy.EPOCH and args.eval_delay <= (state.epoch or 0):
            control.should_evaluate = True
        if args.save_strategy == SaveStrategy.EPOCH:
            control.should_save = True
        return control


class ProgressCallback(TrainerCallback):
    """A tqdm bar over the optimisation steps (and one per evaluation), logs written above it."""

    def __init__(self) -> None:
        self.training_bar: Any = None
        self.prediction_bar: Any = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True)
        self.current_step = state.global_step

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.training_bar is not None:
            self.training_bar.update(state.global_step - self.current_step)
        self.current_step = state.global_step

    def on_prediction_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, eval_dataloader: Any = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and eval_dataloader is not None and hasattr(eval_dataloader, "__len__"):
            if self.prediction_bar is None:
                from tqdm.auto import tqdm

                self.prediction_bar = tqdm(total=len(eval_dataloader), leave=self.training_bar is None, dynamic_ncols=True)
            self.prediction_bar.update(1)

    def _close_prediction_bar(self) -> None:
        if self.prediction_bar is not None:
            self.prediction_bar.close()
        self.prediction_bar = None

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._close_prediction_bar()

    def on_predict(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._close_prediction_bar()

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs: Any = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and self.training_bar is not None and logs:
            shown = ", ".join(f"{k!r}: {v:.4g}" if isinstance(v, float) else f"{k!r}: {v!r}" for k, v in logs.items() if k != "total_flos")
            self.training_bar.write("{" + shown + "}")

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.training_bar is not None:
            self.training_bar.close()
            self.training_bar = None


class PrinterCallback(TrainerCallback):
    """Log lines without a bar (``disable_tqdm=True``): each log dict through the logger at INFO."""

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs: Any = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and logs:
            logger.info("%s", {k: v for k, v in logs.items() if k != "total_flos"})


class EarlyStoppingCallback(TrainerCallback, ExportableState):
    """Stop when ``metric_for_best_model`` has not improved by more than ``early_stopping_threshold``
    for ``early_stopping_patience`` evaluations. Needs ``metric_for_best_model`` (or
    ``load_best_model_at_end``, which defaults it to the loss) and an evaluation strategy."""

    def __init__(self, early_stopping_patience: int = 1, early_stopping_threshold: float = 0.0) -> None:
        if early_stopping_patience < 1:
            raise ValueError(f"early_stopping_patience must be >= 1, got {early_stopping_patience}.")
        self.early_stopping_patience = early_stopping_patience
        self.early_stopping_threshold = early_stopping_threshold
        self.early_stopping_patience_counter = 0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if args.metric_for_best_model is None:
            raise ValueError("EarlyStoppingCallback needs TrainingArguments(metric_for_best_model=...) (or load_best_model_at_end=True).")
        if args.eval_strategy == IntervalStrategy.NO:
            raise ValueError("EarlyStoppingCallback needs evaluations: set TrainingArguments(eval_strategy='steps' or 'epoch').")

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics: Any = None, **kwargs: Any) -> None:
        name = args.metric_for_best_model
        key = name if name.startswith("eval_") else f"eval_{name}"
        value = (metrics or {}).get(key)
        if value is None:
            logger.warning("Early stopping needs the metric %r, which the evaluation did not report (it gave %s).", key, sorted(metrics or {}))
            return
        better = np.greater if args.greater_is_better else np.less
        if state.best_metric is None or (
            better(value, state.best_metric) and abs(value - state.best_metric) > self.early_stopping_threshold
        ):
            self.early_stopping_patience_counter = 0
        else:
            self.early_stopping_patience_counter += 1
        if self.early_stopping_patience_counter >= self.early_stopping_patience:
            control.should_training_stop = True

    def state(self) -> dict[str, Any]:
        return {
            "args": {"early_stopping_patience": self.early_stopping_patience, "early_stopping_threshold": self.early_stopping_threshold},
            "attributes": {"early_stopping_patience_counter": self.early_stopping_patience_counter},
        }
