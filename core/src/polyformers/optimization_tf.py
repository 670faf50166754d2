"""Optimisers and learning-rate schedules for fine-tuning TensorFlow models, as Transformers' ``optimization_tf``.

- :class:`WarmUp`: a learning rate rising from 0 to its peak over the warm-up steps (linearly by
  default), then following another schedule.
- :class:`AdamWeightDecay`: Keras 3's ``AdamW`` (decoupled weight decay, applied before the Adam
  step as Transformers does), which decays only the variables whose *path* matches, so
  ``exclude_from_weight_decay=["LayerNorm", "bias"]`` spares every LayerNorm and bias of a model.
- :func:`create_optimizer`: the schedule Transformers' TensorFlow examples use (linear warm-up,
  then polynomial decay to ``init_lr * min_lr_ratio``) with Adam, or with ``AdamWeightDecay`` when
  ``weight_decay_rate > 0``. Pass the optimizer to ``model.compile``.

Transformers 4's versions build on the legacy Keras 2 optimisers; these are written for Keras 3
and agree with them step for step (the same formulas, the same step counter starting at 0).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

schedules = keras.optimizers.schedules

# What create_optimizer spares from weight decay, as in Transformers.
DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY = ["LayerNorm", "layer_norm", "bias"]


@keras.saving.register_keras_serializable(package="polyformers")
class WarmUp(schedules.LearningRateSchedule):
    """``initial_learning_rate * (step / warmup_steps) ** power`` for the first ``warmup_steps``
    steps, then ``decay_schedule_fn(step - warmup_steps)``.

    Args:
        initial_learning_rate: the learning rate at the end of the warm-up.
        decay_schedule_fn: the schedule (any callable of the step) after the warm-up.
        warmup_steps: how many steps the warm-up lasts.
        power: the warm-up's polynomial power (1.0 is linear).
        name: name scope of the schedule's ops.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_schedule_fn: Callable[[Any], Any],
        warmup_steps: int,
        power: float = 1.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if warmup_steps <= 0:
            raise ValueError(
                f"WarmUp needs warmup_steps > 0, got {warmup_steps}; without warm-up use decay_schedule_fn alone."
            )
        self.initial_learning_rate = initial_learning_rate
        self.decay_schedule_fn = decay_schedule_fn
        self.warmup_steps = warmup_steps
        self.power = power
        self.name = name

    def __call__(self, step: Any) -> tf.Tensor:
        with tf.name_scope(self.name or "WarmUp"):
            step_float = tf.cast(step, tf.float32)
            warmup_steps_float = tf.cast(self.warmup_steps, tf.float32)
            warmup_learning_rate = self.initial_learning_rate * tf.math.pow(step_float / warmup_steps_float, self.power)
            decayed = tf.cast(self.decay_schedule_fn(step - self.warmup_steps), tf.float32)
            return tf.where(step_float < warmup_steps_float, warmup_learning_rate, decayed)

    def get_config(self) -> dict[str, Any]:
        decay = self.decay_schedule_fn
        if isinstance(decay, schedules.LearningRateSchedule):
            decay = keras.optimizers.schedules.serialize(decay)
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_schedule_fn": decay,
            "warmup_steps": self.warmup_steps,
            "power": self.power,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "WarmUp":
        config = dict(config)
        if isinstance(config["decay_schedule_fn"], dict):
            config["decay_schedule_fn"] = keras.optimizers.schedules.deserialize(config["decay_schedule_fn"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="polyformers")
class AdamWeightDecay(keras.optimizers.AdamW):
    """Adam with decoupled weight decay (``var -= lr * weight_decay_rate * var`` before each Adam
    step) on the variables chosen by regexes searched in each variable's path.

    Args:
        learning_rate: a float or a ``LearningRateSchedule`` (e.g. from :func:`create_optimizer`).
        beta_1, beta_2, epsilon, amsgrad: Adam's.
        weight_decay_rate: the decay; 0 disables it.
        include_in_weight_decay: regexes of variables to decay; they win over the exclusions.
        exclude_from_weight_decay: regexes of variables not to decay (e.g. ``["LayerNorm", "bias"]``).
        name: the optimiser's name.
        **kwargs: Keras' optimiser arguments (``clipnorm``, ``global_clipnorm``, ``clipvalue``…).

    Keras' own ``AdamW.exclude_from_weight_decay`` matches only a variable's short name
    (``gamma``, ``bias``), which cannot tell a LayerNorm's ``gamma`` from anything else; matching
    the path (``tf_bert_model/bert/embeddings/LayerNorm/gamma``) is what Transformers' patterns need.
    """

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay_rate: float = 0.0,
        include_in_weight_decay: list[str] | None = None,
        exclude_from_weight_decay: list[str] | None = None,
        name: str = "AdamWeightDecay",
        **kwargs: Any,
    ) -> None:
        if weight_decay_rate < 0:
            raise ValueError(f"weight_decay_rate must be >= 0, got {weight_decay_rate}.")
        kwargs.pop("weight_decay", None)  # Keras' name for weight_decay_rate, from get_config()
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            name=name,
            **kwargs,
        )
        self._include_in_weight_decay = list(include_in_weight_decay or [])
        self._exclude_from_weight_decay_patterns = list(exclude_from_weight_decay or [])

    @property
    def weight_decay_rate(self) -> float:
        return self.weight_decay

    def _do_use_weight_decay(self, param_name: str) -> bool:
        """Whether the variable named (or with the path) ``param_name`` is decayed: Transformers' rule."""
        if not self.weight_decay:
            return False
        if any(re.search(pattern, param_name) for pattern in self._include_in_weight_decay):
            return True
        return not any(re.search(pattern, param_name) for pattern in self._exclude_from_weight_decay_patterns)

    def _use_weight_decay(self, variable: Any) -> bool:
        path = getattr(variable, "path", None) or variable.name
        if not self._do_use_weight_decay(path):
            return False
        return super()._use_weight_decay(variable)  # Keras' own exclude_from_weight_decay(var_list=...)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("weight_decay", None)
        config.update(
            weight_decay_rate=self.weight_decay,
            include_in_weight_decay=self._include_in_weight_decay or None,
            exclude_from_weight_decay=self._exclude_from_weight_decay_patterns or None,
        )
        return config


def create_optimizer(
    init_lr: float,
    num_train_steps: int,
    num_warmup_steps: int,
    min_lr_ratio: float = 0.0,
    adam_beta1: float = 0.9,
    adam_beta2: float = 0.999,
    adam_epsilon: float = 1e-8,
    adam_clipnorm: float | None = None,
    adam_global_clipnorm: float | None = None,
    weight_decay_rate: float = 0.0,
    power: float = 1.0,
    include_in_weight_decay: list[str] | None = None,
) -> tuple[keras.optimizers.Optimizer, schedules.LearningRateSchedule]:
    """``(optimizer, lr_schedule)``: Adam (``AdamWeightDecay`` when ``weight_decay_rate > 0``,
    sparing LayerNorm and bias variables) on a schedule that warms up linearly to ``init_lr`` over
    ``num_warmup_steps`` steps, then decays polynomially (linearly for ``power=1``) to
    ``init_lr * min_lr_ratio`` at ``num_train_steps``.

    ``num_train_steps`` counts optimiser steps over the whole run: batches per epoch times epochs
    (``len(tf_dataset) * epochs`` for a dataset from ``model.prepare_tf_dataset``).
    """
    if num_train_steps <= 0:
        raise ValueError(f"num_train_steps must be > 0, got {num_train_steps}: pass batches per epoch * epochs.")
    if not 0 <= num_warmup_steps < num_train_steps:
        raise ValueError(
            f"num_warmup_steps must be in [0, num_train_steps={num_train_steps}), got {num_warmup_steps}: "
            f"the decay after the warm-up needs at least one step."
        )
    lr_schedule: schedules.LearningRateSchedule = schedules.PolynomialDecay(
        initial_learning_rate=init_lr,
        decay_steps=num_train_steps - num_warmup_steps,
        end_learning_rate=init_lr * min_lr_ratio,
        power=power,
    )
    if num_warmup_steps:
        lr_schedule = WarmUp(init_lr, decay_schedule_fn=lr_schedule, warmup_steps=num_warmup_steps)
    adam_args = dict(
        learning_rate=lr_schedule,
        beta_1=adam_beta1,
        beta_2=adam_beta2,
        epsilon=adam_epsilon,
        clipnorm=adam_clipnorm,
        global_clipnorm=adam_global_clipnorm,
    )
    optimizer: keras.optimizers.Optimizer
    if weight_decay_rate > 0.0:
        optimizer = AdamWeightDecay(
            weight_decay_rate=weight_decay_rate,
            exclude_from_weight_decay=DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
            include_in_weight_decay=include_in_weight_decay,
            **adam_args,
        )
    else:
        optimizer = keras.optimizers.Adam(**adam_args)
    return optimizer, lr_schedule
