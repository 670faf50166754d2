"""``Trainer``: fine-tune any PyTorch model of any plugin, on one process or under ``torchrun``.

    from polyformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    trainer = Trainer(model, TrainingArguments("out", num_train_epochs=3), train_dataset=rows,
                      processing_class=AutoTokenizer.from_pretrained(path))
    trainer.train()

Datasets may be torch datasets, lists of dicts, or Hugging Face ``datasets`` objects; columns the
model's ``forward`` does not take are dropped (``remove_unused_columns``), as Transformers does.

Checkpoints (``output_dir/checkpoint-<step>/``) hold the model (safetensors), ``optimizer.pt`` and
``scheduler.pt`` (read back with ``torch.load(weights_only=True)``: tensors and numbers only, no
code), ``rng_state.json`` (Python, numpy and torch generator states as plain numbers),
``trainer_state.json`` and ``training_args.json``. Each is written into
``tmp-checkpoint-<step>/`` and renamed when complete, so a crash mid-save leaves the previous
checkpoint as the last one.

Exact resume: the training order of each epoch is a permutation seeded by ``seed + epoch``
(``data_seed`` if set; ``DistributedSampler``'s rule, so one process and ``torchrun`` agree), and
the generator states are restored, so ``train(resume_from_checkpoint=True)`` continues with the
losses an uninterrupted run has.

Distributed: under ``torchrun --nproc_per_node N script.py`` each process trains a shard of every
batch in ``DistributedDataParallel`` (gloo on CPU, NCCL on GPU); only rank 0 writes. Several
machines: run torchrun on each with ``--nnodes M --node_rank R --rdzv_backend c10d
--rdzv_endpoint HOST:PORT`` (torchrun's own rendezvous; nothing else to set up).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from .errors import CheckpointError
from .io_utils import atomic_write_text
from .trainer_callback import (
    CallbackHandler,
    DefaultFlowCallback,
    ExportableState,
    PrinterCallback,
    ProgressCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
)
from .trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    TMP_CHECKPOINT_PREFIX,
    EvalLoopOutput,
    EvalPrediction,
    IntervalStrategy,
    PredictionOutput,
    SaveStrategy,
    TrainOutput,
    denumpify,
    get_last_checkpoint,
    set_seed,
    sorted_checkpoints,
    speed_metrics,
)
from .training_args import TrainingArguments

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"
TRAINING_ARGS_NAME = "training_args.json"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
RNG_STATE_NAME = "rng_state.json"
# Label columns the collators rename to "labels"; kept even though forward() does not name them.
_LABEL_COLUMNS = ["label", "label_ids"]


# --- datasets ------------------------------------------------------------------------------------


class _ListDataset(Dataset):
    """A list of dicts (or a dict of equal-length lists) as a map-style dataset."""

    def __init__(self, rows: Any) -> None:
        if isinstance(rows, Mapping):
            lengths = {k: len(v) for k, v in rows.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"A dataset given as a dict of columns needs equal-length columns; got lengths {lengths}.")
            n = next(iter(lengths.values()), 0)
            rows = [{k: v[i] for k, v in rows.items()} for i in range(n)]
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Any:
        return self.rows[index]


def _as_dataset(dataset: Any, argument: str) -> Any:
    if dataset is None:
        return None
    if isinstance(dataset, (list, tuple, Mapping)):
        dataset = _ListDataset(dataset)
    if not isinstance(dataset, IterableDataset) and not hasattr(dataset, "__getitem__"):
        raise TypeError(
            f"{argument} must be a torch Dataset, a list of dicts, a dict of columns or a `datasets` "
            f"Dataset; got {type(dataset).__name__}."
        )
    if hasattr(dataset, "__len__") and len(dataset) == 0:
        raise ValueError(f"{argument} is empty (0 examples): give the Trainer at least one example.")
    return dataset


class _RemoveColumnsCollator:
    """Drops the keys the model does not accept before collating; says once which ones."""

    def __init__(self, collator: Callable, keep: set[str], description: str) -> None:
        self.collator = collator
        self.keep = keep
        self.description = description
        self.reported = False

    def __call__(self, features: list) -> Any:
        if features and isinstance(features[0], Mapping):
            dropped = sorted(set(features[0]) - self.keep)
            if dropped and not self.reported:
                logger.info("The %s has columns the model does not accept, dropped: %s.", self.description, dropped)
                self.reported = True
            features = [{k: v for k, v in f.items() if k in self.keep} for f in features]
        return self.collator(features)


class EpochSampler(Sampler):
    """``DistributedSampler``'s order: epoch ``e`` is ``randperm(n)`` seeded by ``seed + e``, padded
    by repetition to a multiple of the process count, and process ``r`` takes every
    ``world_size``-th index from ``r``. So one process with batch ``N*B`` sees the samples that
    ``N`` torchrun processes with batch ``B`` see together.

    ``skip`` leaves out this process's first samples of the epoch: a resumed run skips the batches
    trained before the checkpoint here, without loading or collating them (a collator that draws
    random numbers, like MLM masking, must not draw for them again).
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1, drop_last: bool = False) -> None:
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.total = (n // world_size if drop_last else math.ceil(n / world_size)) * world_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Any:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.n, generator=generator).tolist()
        else:
            indices = list(range(self.n))
        while len(indices) < self.total:
            indices += indices[: self.total - len(indices)]
        return iter(indices[: self.total][self.rank :: self.world_size][self.skip :])

    def __len__(self) -> int:
        return self.total // self.world_size - self.skip


# --- the trainer ---------------------------------------------------------------------------------


class Trainer:
    def __init__(
        self,
        model: nn.Module | None = None,
        args: TrainingArguments | None = None,
        data_collator: Callable | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        model_init: Callable[[], nn.Module] | None = None,
        compute_loss_func: Callable | None = None,
        compute_metrics: Callable[[EvalPrediction], dict] | None = None,
        callbacks: list | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        preprocess_logits_for_metrics: Callable | None = None,
        tokenizer: Any = None,
    ) -> None:
        self.args = args if args is not None else TrainingArguments()
        if not isinstance(self.args, TrainingArguments):
            raise TypeError(f"args must be a TrainingArguments, got {type(self.args).__name__}.")
        args = self.args
        set_seed(args.seed)
        self._init_distributed()
        if model is None:
            if model_init is None:
                raise ValueError("Trainer needs a model, or model_init (a function returning a fresh model).")
            model = model_init()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module (a polyformers PyTorch model), got {type(model).__name__}.")
        self.model_init = model_init
        self.model = model.to(args.device)
        self.processing_class = processing_class if processing_class is not None else tokenizer
        self.train_dataset = _as_dataset(train_dataset, "train_dataset")
        if _is_dataset_dict(eval_dataset):
            # {name: dataset}: evaluated one by one with eval_<name>_ metric prefixes.
            self.eval_dataset = {name: _as_dataset(ds, f"eval_dataset[{name!r}]") for name, ds in eval_dataset.items()}
        else:
            self.eval_dataset = _as_dataset(eval_dataset, "eval_dataset")
        self.data_collator = data_collator if data_collator is not None else self._default_collator()
        self.compute_loss_func = compute_loss_func
        self.compute_metrics = compute_metrics
        self.preprocess_logits_for_metrics = preprocess_logits_for_metrics
        self.optimizer, self.lr_scheduler = optimizers
        if self.optimizer is not None and model_init is not None:
            raise ValueError("optimizers and model_init cannot be combined: the optimizer would hold the old model's parameters.")
        if args.gradient_checkpointing:
            self._enable_gradient_checkpointing()

        default = [DefaultFlowCallback, PrinterCallback if args.disable_tqdm else ProgressCallback]
        self.callback_handler = CallbackHandler(default + list(callbacks or []), self.model, self.processing_class, self.optimizer, self.lr_scheduler)
        self.state = TrainerState(is_local_process_zero=args.local_process_index == 0, is_world_process_zero=args.process_index == 0)
        self.control = TrainerControl()
        self._signature_columns: list[str] | None = None
        self._new_best = False  # the last evaluation set a new best metric; the next save records it
        self.control = self.callback_handler.on_init_end(args, self.state, self.control)

    # --- setup -----------------------------------------------------------------------------------

    def _init_distributed(self) -> None:
        args = self.args
        if args.world_size <= 1 or torch.distributed.is_initialized():
            return
        backend = args.ddp_backend or ("nccl" if args.device.type == "cuda" else "gloo")
        if args.device.type == "cuda":
            torch.cuda.set_device(args.device)
        import datetime

        torch.distributed.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=args.ddp_timeout))
        logger.info("Process %d of %d joined the %s process group.", args.process_index, args.world_size, backend)

    @property
    def is_distributed(self) -> bool:
        return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1

    def _barrier(self) -> None:
        if self.is_distributed:
            torch.distributed.barrier()

    def _default_collator(self) -> Callable:
        from .data.data_collator import DataCollatorWithPadding, default_data_collator

        tokenizer = self.processing_class
        if tokenizer is not None and hasattr(tokenizer, "pad") and hasattr(tokenizer, "pad_token_id"):
            return DataCollatorWithPadding(tokenizer)
        return default_data_collator

    def _enable_gradient_checkpointing(self) -> None:
        if not getattr(self.model, "supports_gradient_checkpointing", False) or not hasattr(self.model, "gradient_checkpointing_enable"):
            raise ValueError(
                f"gradient_checkpointing=True, but {type(self.model).__name__} does not support gradient checkpointing. "
                f"Set gradient_checkpointing=False."
            )
        self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs)

    def add_callback(self, callback: Any) -> None:
        self.callback_handler.add_callback(callback)

    def pop_callback(self, callback: Any) -> Any:
        return self.callback_handler.pop_callback(callback)

    def remove_callback(self, callback: Any) -> None:
        self.callback_handler.remove_callback(callback)

    # --- data --------------------------------------------------------------------------------------

    @property
    def _unwrapped(self) -> nn.Module:
        model = self.model
        return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model

    def _kept_columns(self) -> set[str]:
        if self._signature_columns is None:
            parameters = inspect.signature(self._unwrapped.forward).parameters
            self._signature_columns = list(parameters) + _LABEL_COLUMNS + list(self.args.label_names or [])
        return set(self._signature_columns)

    def _collator_for(self, dataset: Any, description: str) -> tuple[Any, Callable]:
        """The dataset with unused columns removed (``datasets`` objects natively, others in the
        collator), and the collator to use."""
        if not self.args.remove_unused_columns:
            return dataset, self.data_collator
        keep = self._kept_columns()
        column_names = getattr(dataset, "column_names", None)
        if isinstance(column_names, list) and hasattr(dataset, "remove_columns"):
            dropped = [c for c in column_names if c not in keep]
            if dropped:
                logger.info("The %s has columns the model does not accept, dropped: %s.", description, dropped)
                dataset = dataset.remove_columns(dropped)
            return dataset, self.data_collator
        return dataset, _RemoveColumnsCollator(self.data_collator, keep, description)

    def _seed(self) -> int:
        return self.args.data_seed if self.args.data_seed is not None else self.args.seed

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("Trainer.train() needs a train_dataset.")
        dataset, collator = self._collator_for(self.train_dataset, "training dataset")
        args = self.args
        kwargs: dict[str, Any] = dict(
            batch_size=args.per_device_train_batch_size, collate_fn=collator, num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory and args.device.type == "cuda", drop_last=args.dataloader_drop_last,
        )
        # The loader's own seed draw comes from this generator, not torch's global one, so that a
        # resumed run's dropout draws continue where the checkpoint left them.
        kwargs["generator"] = torch.Generator().manual_seed(self._seed())
        if isinstance(dataset, IterableDataset):
            return DataLoader(dataset, **kwargs)
        sampler = EpochSampler(
            len(dataset), self._seed(), rank=args.process_index if self.is_distributed else 0,
            world_size=args.world_size if self.is_distributed else 1, drop_last=args.dataloader_drop_last,
        )
        return DataLoader(dataset, sampler=sampler, **kwargs)

    def get_eval_dataloader(self, eval_dataset: Any = None, description: str = "evaluation dataset") -> DataLoader:
        dataset = _as_dataset(eval_dataset, "eval_dataset") if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("evaluate() needs an eval_dataset (given to the Trainer or to evaluate()).")
        dataset, collator = self._collator_for(dataset, description)
        args = self.args
        kwargs: dict[str, Any] = dict(
            batch_size=args.per_device_eval_batch_size, collate_fn=collator, num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory and args.device.type == "cuda", generator=torch.Generator().manual_seed(0),
        )
        if self.is_distributed and not isinstance(dataset, IterableDataset):
            kwargs["sampler"] = EpochSampler(len(dataset), 0, shuffle=False, rank=args.process_index, world_size=args.world_size)
        return DataLoader(dataset, **kwargs)

    def get_test_dataloader(self, test_dataset: Any) -> DataLoader:
        return self.get_eval_dataloader(test_dataset, "test dataset")

    def _prepare_inputs(self, inputs: Any) -> Any:
        """Tensors (nested in dicts / lists, e.g. DETR's label dicts) moved to the training device."""
        device = self.args.device
        if isinstance(inputs, Mapping):
            return {k: self._prepare_inputs(v) for k, v in inputs.items()}
        if isinstance(inputs, (list, tuple)):
            return type(inputs)(self._prepare_inputs(v) for v in inputs)
        if isinstance(inputs, torch.Tensor):
            return inputs.to(device)
        return inputs

    # --- optimiser and schedule --------------------------------------------------------------------

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        """Parameters that get weight decay: all but biases and normalisation weights."""
        excluded: set[str] = set()
        for module_name, module in model.named_modules():
            is_norm = isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)) or "norm" in type(module).__name__.lower()
            for name, _ in module.named_parameters(recurse=False):
                full = f"{module_name}.{name}" if module_name else name
                if is_norm or name == "bias" or name.endswith(".bias"):
                    excluded.add(full)
        return [name for name, _ in model.named_parameters() if name not in excluded]

    def create_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer is not None:
            return self.optimizer
        args = self.args
        model = self._unwrapped
        decay = set(self.get_decay_parameter_names(model))
        groups = [
            {"params": [p for n, p in model.named_parameters() if n in decay and p.requires_grad], "weight_decay": args.weight_decay},
            {"params": [p for n, p in model.named_parameters() if n not in decay and p.requires_grad], "weight_decay": 0.0},
        ]
        if args.optim == "sgd":
            self.optimizer = torch.optim.SGD(groups, lr=args.learning_rate)
        else:
            self.optimizer = torch.optim.AdamW(
                groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon,
                fused=args.optim == "adamw_torch_fused" or None,
            )
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> Any:
        if self.lr_scheduler is None:
            from .optimization import get_scheduler

            self.lr_scheduler = get_scheduler(
                self.args.lr_scheduler_type,
                optimizer=optimizer or self.optimizer,
                num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                num_training_steps=num_training_steps,
                scheduler_specific_kwargs=self.args.lr_scheduler_kwargs or {},
            )
        return self.lr_scheduler

    def create_optimizer_and_scheduler(self, num_training_steps: int) -> None:
        self.create_optimizer()
        self.create_scheduler(num_training_steps, self.optimizer)

    # --- training ----------------------------------------------------------------------------------

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> TrainOutput:
        """Train; ``resume_from_checkpoint`` is a checkpoint folder, or True for the latest one in
        ``output_dir``. Returns ``TrainOutput(global_step, training_loss, metrics)``."""
        if kwargs:
            raise TypeError(f"train() got unexpected keyword arguments {sorted(kwargs)}.")
        args = self.args
        checkpoint = self._resolve_checkpoint(resume_from_checkpoint)
        if self.model_init is not None and checkpoint is None and self.state.global_step == 0 and self.optimizer is None:
            set_seed(args.seed)  # model_init builds the model under the run's seed, as Transformers does
            self.model = self.model_init().to(args.device)
            self.callback_handler.model = self.model
        if checkpoint is not None:
            self._load_weights(checkpoint)

        dataloader = self.get_train_dataloader()
        try:
            batches_per_epoch: int | None = len(dataloader)
        except TypeError:  # an IterableDataset without __len__
            batches_per_epoch = None
        if batches_per_epoch == 0:
            raise ValueError(
                f"The training dataloader is empty: {len(self.train_dataset)} examples with batch size "
                f"{args.per_device_train_batch_size} and dataloader_drop_last={args.dataloader_drop_last}."
            )
        ga = args.gradient_accumulation_steps
        if batches_per_epoch is not None:
            updates_per_epoch = max(math.ceil(batches_per_epoch / ga), 1)
            if args.max_steps > 0:
                max_steps = args.max_steps
                num_epochs = math.ceil(max_steps / updates_per_epoch)
            else:
                max_steps = math.ceil(args.num_train_epochs * updates_per_epoch)
                num_epochs = math.ceil(args.num_train_epochs)
        else:
            if args.max_steps <= 0:
                raise ValueError("An iterable train_dataset has no length: set TrainingArguments(max_steps=...).")
            max_steps, num_epochs, updates_per_epoch = args.max_steps, 2**31 - 1, args.max_steps

        self.create_optimizer_and_scheduler(max_steps)
        self.callback_handler.optimizer, self.callback_handler.lr_scheduler = self.optimizer, self.lr_scheduler
        self.state = TrainerState(
            max_steps=max_steps, num_train_epochs=num_epochs, train_batch_size=args.per_device_train_batch_size,
            logging_steps=args.logging_steps, eval_steps=args.eval_steps or 0, save_steps=args.save_steps,
            is_local_process_zero=args.local_process_index == 0, is_world_process_zero=args.process_index == 0,
        )
        epochs_done, batches_to_skip = 0, 0
        if checkpoint is not None:
            self._load_training_state(checkpoint)
            self.state.max_steps, self.state.num_train_epochs = max_steps, num_epochs
            epochs_done = self.state.global_step // updates_per_epoch
            batches_to_skip = (self.state.global_step % updates_per_epoch) * ga
            if args.ignore_data_skip:
                batches_to_skip = 0
            logger.info("Resuming from %s at step %d (epoch %d, skipping %d batches).", checkpoint, self.state.global_step, epochs_done, batches_to_skip)

        model = self.model
        if self.is_distributed and not isinstance(model, nn.parallel.DistributedDataParallel):
            model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[args.device.index] if args.device.type == "cuda" else None,
                find_unused_parameters=bool(args.ddp_find_unused_parameters),
            )
        self.model_wrapped = model
        self.callback_handler.train_dataloader = dataloader
        self.control = self.callback_handler.on_train_begin(args, self.state, self.control)
        self.control._new_training()

        start = time.time()
        total_loss = torch.zeros((), device=args.device)  # summed since the last log
        logged_loss_sum, logged_steps = 0.0, 0  # for the final average
        self._last_logged_step = self.state.global_step
        grad_norm: float | None = None
        model.zero_grad(set_to_none=True)
        samples_seen = 0
        sampler = dataloader.sampler if isinstance(dataloader.sampler, EpochSampler) else None
        for epoch in range(epochs_done, num_epochs):
            skipped = batches_to_skip if epoch == epochs_done and sampler is not None else 0
            if sampler is not None:
                sampler.set_epoch(epoch)
                sampler.skip = skipped * args.per_device_train_batch_size
            self.control = self.callback_handler.on_epoch_begin(args, self.state, self.control)
            self.control._new_epoch()
            n_batches = batches_per_epoch if batches_per_epoch is not None else max_steps * ga
            for step, inputs in enumerate(dataloader, start=skipped):
                if step % ga == 0:
                    self.control = self.callback_handler.on_step_begin(args, self.state, self.control)
                is_update = (step + 1) % ga == 0 or step + 1 == n_batches
                sync = contextlib.nullcontext() if is_update or not isinstance(model, nn.parallel.DistributedDataParallel) else model.no_sync()
                with sync:
                    loss = self.training_step(model, inputs, num_batches=min(ga, n_batches - (step // ga) * ga))
                if args.logging_nan_inf_filter and not torch.isfinite(loss):
                    # Log the running average instead of a nan/inf (Transformers' rule).
                    loss = total_loss / (1 + self.state.global_step - self._last_logged_step)
                total_loss += loss
                samples_seen += _batch_size(inputs)
                if not is_update:
                    self.control = self.callback_handler.on_substep_end(args, self.state, self.control)
                    continue
                if args.max_grad_norm and args.max_grad_norm > 0:
                    grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm))
                self.control = self.callback_handler.on_pre_optimizer_step(args, self.state, self.control)
                self.optimizer.step()
                self.control = self.callback_handler.on_optimizer_step(args, self.state, self.control)
                self._step_lr = self.optimizer.param_groups[0]["lr"]  # logged: the rate this update used (as Transformers 5)
                if not isinstance(self.lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.lr_scheduler.step()  # ReduceLROnPlateau steps after each evaluation
                model.zero_grad(set_to_none=True)
                self.state.global_step += 1
                self.state.epoch = epoch + (step + 1) / n_batches
                self.control = self.callback_handler.on_step_end(args, self.state, self.control)
                logged = self._maybe_log_save_evaluate(total_loss, grad_norm, epoch_end=False)
                if logged is not None:
                    logged_loss_sum += logged[0]
                    logged_steps += logged[1]
                    total_loss.zero_()
                if self.control.should_epoch_stop or self.control.should_training_stop:
                    break
            self.control = self.callback_handler.on_epoch_end(args, self.state, self.control)
            logged = self._maybe_log_save_evaluate(total_loss, grad_norm, epoch_end=True)
            if logged is not None:
                logged_loss_sum += logged[0]
                logged_steps += logged[1]
                total_loss.zero_()
            if self.control.should_training_stop or self.state.global_step >= max_steps:
                break
        if sampler is not None:
            sampler.skip = 0

        pending = self.state.global_step - self._last_logged_step
        if pending > 0:
            logged_loss_sum += self._reduce(total_loss).item()
            logged_steps += pending
        train_loss = logged_loss_sum / max(logged_steps, 1)
        runtime_end = time.time()
        if args.load_best_model_at_end and self.state.best_model_checkpoint is not None:
            self._barrier()
            logger.info("Loading the best model, from %s (%s = %s).", self.state.best_model_checkpoint, args.metric_for_best_model, self.state.best_metric)
            self._load_weights(self.state.best_model_checkpoint)
        metrics = speed_metrics("train", start, runtime_end, num_samples=samples_seen * args.world_size, num_steps=self.state.global_step)
        metrics["train_loss"] = train_loss
        metrics["epoch"] = self.state.epoch
        self.log(metrics)
        self._rotate_checkpoints()
        self.control = self.callback_handler.on_train_end(args, self.state, self.control)
        return TrainOutput(self.state.global_step, train_loss, metrics)

    def training_step(self, model: nn.Module, inputs: Any, num_batches: int = 1) -> torch.Tensor:
        """Forward and backward on one batch of the ``num_batches`` accumulated into one update;
        returns the loss divided by ``num_batches``, detached (their sum is the update's loss)."""
        model.train()
        inputs = self._prepare_inputs(inputs)
        with self._autocast():
            loss = self.compute_loss(model, inputs)
        loss = loss / num_batches
        loss.backward()
        return loss.detach()

    def _autocast(self) -> Any:
        if not self.args.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.args.device.type, dtype=torch.bfloat16)

    def compute_loss(self, model: nn.Module, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        """The model's own loss (from the labels in ``inputs``), or ``compute_loss_func(outputs,
        labels)``, or label smoothing over the logits when ``label_smoothing_factor`` > 0."""
        labels = None
        if self.compute_loss_func is not None or self.args.label_smoothing_factor > 0:
            labels = inputs.pop("labels", None) if isinstance(inputs, dict) else None
        try:
            outputs = model(**inputs) if isinstance(inputs, Mapping) else model(*inputs)
        except (IndexError, RuntimeError) as exc:
            raise self._label_error(inputs, exc) or exc
        if labels is not None and self.compute_loss_func is not None:
            loss = self.compute_loss_func(outputs, labels, num_items_in_batch=num_items_in_batch)
        elif labels is not None:
            logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100,
                label_smoothing=self.args.label_smoothing_factor,
            )
        else:
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else None
            if loss is None:
                given = sorted(inputs) if isinstance(inputs, Mapping) else f"{len(inputs)} positional inputs"
                raise ValueError(
                    f"{type(self._unwrapped).__name__} returned no loss from a batch with inputs {given}: the dataset "
                    f"has no labels for this head. Add a 'labels' (or 'label') column to the dataset, set "
                    f"TrainingArguments(label_names=[...]) if the labels go by another name, or pass compute_loss_func."
                )
        return (loss, outputs) if return_outputs else loss

    def _label_error(self, inputs: Any, exc: Exception) -> ValueError | None:
        """A clear error when integer labels exceed the head's ``num_labels`` (the forward fails
        deep inside the loss otherwise)."""
        labels = inputs.get("labels") if isinstance(inputs, Mapping) else None
        config = getattr(self._unwrapped, "config", None)
        num_labels = getattr(config, "num_labels", None)
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or num_labels is None:
            return None
        valid = labels[labels != -100]
        if valid.numel() and (int(valid.max()) >= num_labels or int(valid.min()) < 0):
            error = ValueError(
                f"The labels run from {int(valid.min())} to {int(valid.max())}, but {type(self._unwrapped).__name__} has "
                f"num_labels={num_labels} (valid labels 0..{num_labels - 1}). Load the model with "
                f"from_pretrained(..., num_labels=N) (and ignore_mismatched_sizes=True for a checkpoint with another head), "
                f"or fix the labels."
            )
            error.__cause__ = exc
            return error
        return None

    def _reduce(self, value: torch.Tensor) -> torch.Tensor:
        """Mean over processes."""
        if not self.is_distributed:
            return value
        value = value.clone()
        torch.distributed.all_reduce(value)
        return value / torch.distributed.get_world_size()

    def _maybe_log_save_evaluate(self, total_loss: torch.Tensor, grad_norm: float | None, epoch_end: bool) -> tuple[float, int] | None:
        """Acts on the control flags; returns ``(summed loss, steps)`` when it logged the loss."""
        logged = None
        if self.control.should_log and self.state.global_step > self._last_logged_step:
            steps = self.state.global_step - self._last_logged_step
            loss_sum = self._reduce(total_loss).item()
            logs: dict[str, float] = {"loss": loss_sum / steps}
            if grad_norm is not None:
                logs["grad_norm"] = grad_norm
            logs["learning_rate"] = self._step_lr
            self._last_logged_step = self.state.global_step
            self.log(logs)
            logged = (loss_sum, steps)
        self.control.should_log = False
        metrics = None
        if self.control.should_evaluate:
            metrics = self._evaluate_all()
            if isinstance(self.lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and metrics:
                self.lr_scheduler.step(metrics[self._best_metric_key()] if self.args.metric_for_best_model else metrics["eval_loss"])
        is_new_best = self._update_best_metric(metrics) if metrics is not None else False
        if self.args.save_strategy == SaveStrategy.BEST:
            self.control.should_save = is_new_best
        if self.control.should_save:
            self._save_checkpoint()
            self.control = self.callback_handler.on_save(self.args, self.state, self.control)
        self.control.should_evaluate = False
        self.control.should_save = False
        return logged

    def _evaluate_all(self) -> dict[str, float]:
        if isinstance(self.eval_dataset, dict):
            metrics: dict[str, float] = {}
            for name, dataset in self.eval_dataset.items():
                metrics.update(self.evaluate(dataset, metric_key_prefix=f"eval_{name}"))
            return metrics
        return self.evaluate()

    def _best_metric_key(self) -> str:
        name = self.args.metric_for_best_model or "loss"
        return name if name.startswith("eval_") else f"eval_{name}"

    def _update_best_metric(self, metrics: dict[str, float]) -> bool:
        if self.args.metric_for_best_model is None:
            return False
        key = self._best_metric_key()
        if key not in metrics:
            raise KeyError(
                f"metric_for_best_model={self.args.metric_for_best_model!r}, but the evaluation reported "
                f"{sorted(metrics)}. Name one of those (with or without the 'eval_' prefix)."
            )
        value = float(metrics[key])
        better = np.greater if self.args.greater_is_better else np.less
        if self.state.best_metric is None or better(value, self.state.best_metric):
            self.state.best_metric = value
            self.state.best_global_step = self.state.global_step
            self._new_best = True
            return True
        return False

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Record ``logs`` (with ``epoch`` and ``step``) in the log history and tell the callbacks."""
        logs = denumpify(dict(logs))
        if self.state.epoch is not None:
            logs["epoch"] = self.state.epoch
        output = {**logs, "step": self.state.global_step}
        self.state.log_history.append(output)
        self.control = self.callback_handler.on_log(self.args, self.state, self.control, logs=logs)

    # --- evaluation and prediction -----------------------------------------------------------------

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Loss and ``compute_metrics`` over the evaluation dataset, keys prefixed ``eval_``."""
        dataloader = self.get_eval_dataloader(eval_dataset)
        start = time.time()
        output = self.evaluation_loop(dataloader, "Evaluation", ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        output.metrics.update(speed_metrics(metric_key_prefix, start, time.time(), num_samples=output.num_samples, num_steps=math.ceil(output.num_samples / self.args.eval_batch_size)))
        self.log(output.metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics=output.metrics)
        return output.metrics

    def predict(self, test_dataset: Any, ignore_keys: list[str] | None = None, metric_key_prefix: str = "test") -> PredictionOutput:
        """Predictions (the logits, as numpy), labels if the dataset has them, and metrics."""
        dataloader = self.get_test_dataloader(test_dataset)
        start = time.time()
        output = self.evaluation_loop(dataloader, "Prediction", ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        output.metrics.update(speed_metrics(metric_key_prefix, start, time.time(), num_samples=output.num_samples, num_steps=math.ceil(output.num_samples / self.args.eval_batch_size)))
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, metrics=output.metrics)
        return PredictionOutput(output.predictions, output.label_ids, output.metrics)

    def prediction_step(self, model: nn.Module, inputs: Any, prediction_loss_only: bool, ignore_keys: list[str] | None = None) -> tuple[Any, Any, Any]:
        """``(loss, logits, labels)`` for one batch, without gradients."""
        inputs = self._prepare_inputs(inputs)
        label_names = self.args.label_names or ["labels"]
        has_labels = isinstance(inputs, Mapping) and all(inputs.get(name) is not None for name in label_names)
        labels = tuple(inputs[name] for name in label_names) if has_labels else None
        if labels is not None and len(labels) == 1:
            labels = labels[0]
        with torch.no_grad(), self._autocast():
            if has_labels:
                loss, outputs = self.compute_loss(model, dict(inputs), return_outputs=True)
                loss = loss.detach().mean()
            else:
                loss = None
                outputs = model(**inputs) if isinstance(inputs, Mapping) else model(*inputs)
        if prediction_loss_only:
            return loss, None, None
        ignore = set(ignore_keys or getattr(getattr(self._unwrapped, "config", None), "keys_to_ignore_at_inference", []) or [])
        if isinstance(outputs, Mapping):
            logits = tuple(v for k, v in outputs.items() if k not in ignore | {"loss"} and v is not None)
        else:
            logits = outputs[1:] if has_labels else outputs
        if len(logits) == 1:
            logits = logits[0]
        return loss, logits, labels

    def evaluation_loop(self, dataloader: DataLoader, description: str, prediction_loss_only: bool | None = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval") -> EvalLoopOutput:
        args = self.args
        prediction_loss_only = args.prediction_loss_only if prediction_loss_only is None else prediction_loss_only
        model = self._unwrapped
        model.eval()
        self.callback_handler.eval_dataloader = dataloader
        losses: list[np.ndarray] = []
        all_preds: Any = None
        all_labels: Any = None
        all_inputs: Any = None
        num_samples = 0
        for inputs in dataloader:
            batch_size = _batch_size(inputs)
            num_samples += batch_size
            loss, logits, labels = self.prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
            if loss is not None:
                losses.append(np.repeat(loss.float().cpu().numpy()[None], batch_size))
            if logits is not None and self.preprocess_logits_for_metrics is not None:
                logits = self.preprocess_logits_for_metrics(logits, labels)
            if logits is not None:
                all_preds = _concat(all_preds, _to_numpy(logits))
            if labels is not None:
                all_labels = _concat(all_labels, _to_numpy(labels))
            if "inputs" in args.include_for_metrics and isinstance(inputs, Mapping):
                all_inputs = _concat(all_inputs, _to_numpy(inputs[model.main_input_name] if hasattr(model, "main_input_name") else next(iter(inputs.values()))))
            self.control = self.callback_handler.on_prediction_step(args, self.state, self.control)
        all_losses = np.concatenate(losses) if losses else None
        if self.is_distributed:
            all_losses, all_preds, all_labels, num_samples = self._gather_eval(dataloader, all_losses, all_preds, all_labels)
        metrics: dict[str, Any] = {}
        if self.compute_metrics is not None and all_preds is not None and all_labels is not None:
            prediction = EvalPrediction(all_preds, all_labels, inputs=all_inputs if "inputs" in args.include_for_metrics else None)
            metrics = dict(self.compute_metrics(prediction))
        if all_losses is not None:
            metrics["loss"] = float(all_losses.mean())
        metrics = denumpify(metrics)
        for key in list(metrics):
            if not key.startswith(f"{metric_key_prefix}_"):
                metrics[f"{metric_key_prefix}_{key}"] = metrics.pop(key)
        return EvalLoopOutput(all_preds, all_labels, metrics, num_samples)

    def _gather_eval(self, dataloader: DataLoader, losses: Any, preds: Any, labels: Any) -> tuple[Any, Any, Any, int]:
        """Every process's share, back in dataset order (DistributedSampler deals index i to rank
        i % world_size; its padding repeats are cut)."""
        world = torch.distributed.get_world_size()
        gathered: list[Any] = [None] * world
        torch.distributed.all_gather_object(gathered, (losses, preds, labels))
        total = len(dataloader.dataset)

        def interleave(parts: list[Any]) -> Any:
            if parts[0] is None:
                return None
            if isinstance(parts[0], tuple):
                return tuple(interleave([p[i] for p in parts]) for i in range(len(parts[0])))
            width = max(p.shape[1] for p in parts) if parts[0].ndim > 1 else None
            parts = [_pad_to(p, width) for p in parts] if width else parts
            n = parts[0].shape[0]
            stacked = np.stack(parts, axis=1)  # (n, world, ...)
            return stacked.reshape(n * world, *stacked.shape[2:])[:total]

        return (
            interleave([g[0] for g in gathered]), interleave([g[1] for g in gathered]),
            interleave([g[2] for g in gathered]), total,
        )

    # --- checkpoints -------------------------------------------------------------------------------

    def _resolve_checkpoint(self, resume_from_checkpoint: str | bool | None) -> str | None:
        if resume_from_checkpoint in (None, False):
            return None
        if resume_from_checkpoint is True:
            folder = self.args.output_dir
            last = get_last_checkpoint(folder) if os.path.isdir(folder) else None
            if last is None:
                raise CheckpointError(
                    f"resume_from_checkpoint=True, but output_dir {folder!r} holds no checkpoint-<step> folder. "
                    f"Train without resume_from_checkpoint, or pass the path of a checkpoint."
                )
            return last
        path = os.fspath(resume_from_checkpoint)
        if not os.path.isdir(path):
            raise CheckpointError(
                f"resume_from_checkpoint={path!r} does not exist (or is not a directory). Pass a checkpoint-<step> "
                f"folder written by the Trainer, or True for the latest one in output_dir."
            )
        if not os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
            raise CheckpointError(
                f"resume_from_checkpoint={path!r} has no {TRAINER_STATE_NAME}: it is not a complete Trainer checkpoint. "
                f"Pass a checkpoint-<step> folder, or True for the latest one in output_dir."
            )
        return path

    def _load_weights(self, folder: str) -> None:
        from .checkpoint_utils import resolve_weights
        from .modeling_utils import load_checkpoint_files

        found = resolve_weights(folder, [("model.safetensors", "model.safetensors.index.json"), ("pytorch_model.bin", "pytorch_model.bin.index.json")])
        if found is None:
            raise CheckpointError(f"{folder!r} holds no model weights (model.safetensors or pytorch_model.bin). Resume from a complete checkpoint.")
        weights_name, files = found
        state_dict = load_checkpoint_files(files, weights_name)
        model = self._unwrapped
        if hasattr(model, "_rename_checkpoint_keys"):
            state_dict = model._rename_checkpoint_keys(state_dict, model.state_dict().keys())
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or [])
        missing = [k for k in missing if k not in tied and not _is_tied(model, k)]
        if missing or unexpected:
            raise CheckpointError(
                f"The checkpoint {folder!r} does not match {type(model).__name__}: missing {missing[:5]}, unexpected "
                f"{unexpected[:5]}. Resume with the model the checkpoint was trained with."
            )

    def _load_training_state(self, checkpoint: str) -> None:
        self.state = TrainerState.load_from_json(os.path.join(checkpoint, TRAINER_STATE_NAME))
        self.state.is_local_process_zero = self.args.local_process_index == 0
        self.state.is_world_process_zero = self.args.process_index == 0
        optimizer_path = os.path.join(checkpoint, OPTIMIZER_NAME)
        scheduler_path = os.path.join(checkpoint, SCHEDULER_NAME)
        if os.path.isfile(optimizer_path):
            self.optimizer.load_state_dict(_safe_torch_load(optimizer_path, self.args.device))
        if os.path.isfile(scheduler_path):
            self.lr_scheduler.load_state_dict(_safe_torch_load(scheduler_path, "cpu"))
        self._load_rng_state(checkpoint)
        stateful = self.state.stateful_callbacks
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, ExportableState) and type(callback).__name__ in stateful:
                saved = stateful[type(callback).__name__]
                for key, value in saved.get("attributes", {}).items():
                    setattr(callback, key, value)

    def _save_checkpoint(self) -> None:
        """``checkpoint-<step>/``, written complete under a temporary name, then renamed."""
        args = self.args
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        final = os.path.join(args.output_dir, name)
        if args.metric_for_best_model is not None and getattr(self, "_new_best", False):
            self.state.best_model_checkpoint = final
            self._new_best = False
        self.state.stateful_callbacks = {
            type(cb).__name__: cb.state() for cb in self.callback_handler.callbacks if isinstance(cb, ExportableState)
        }
        if args.should_save:
            os.makedirs(args.output_dir, exist_ok=True)
            tmp = os.path.join(args.output_dir, f"{TMP_CHECKPOINT_PREFIX}-{self.state.global_step}")
            if os.path.exists(tmp):
                shutil.rmtree(tmp)
            os.makedirs(tmp)
            self._save(tmp)
            if not args.save_only_model:
                torch.save(self.optimizer.state_dict(), os.path.join(tmp, OPTIMIZER_NAME))
                torch.save(self.lr_scheduler.state_dict(), os.path.join(tmp, SCHEDULER_NAME))
            self._save_rng_state(tmp)
            self.state.save_to_json(os.path.join(tmp, TRAINER_STATE_NAME))
            _fsync_tree(tmp)
            if os.path.exists(final):  # a rerun over an older run's checkpoint of the same step
                stale = final + ".old"
                os.replace(final, stale)
                os.replace(tmp, final)
                shutil.rmtree(stale)
            else:
                os.replace(tmp, final)
            _fsync_dir(args.output_dir)
            self._rotate_checkpoints()
        self._barrier()

    def _save_rng_state(self, folder: str) -> None:
        """The first process's generator states (every process restores them on resume)."""
        state = {
            "python": _python_rng_state(),
            "numpy": _numpy_rng_state(),
            "torch_cpu": torch.get_rng_state().tolist(),
            "torch_cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        }
        atomic_write_text(os.path.join(folder, RNG_STATE_NAME), json.dumps(state))

    def _load_rng_state(self, checkpoint: str) -> None:
        path = os.path.join(checkpoint, RNG_STATE_NAME)
        if not os.path.isfile(path):
            logger.warning("%s has no %s: the resumed run's random draws (dropout) will differ from an uninterrupted run.", checkpoint, RNG_STATE_NAME)
            return
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
            version, internal, gauss = state["python"]
            random.setstate((version, tuple(internal), gauss))
            kind, keys, pos, has_gauss, cached = state["numpy"]
            np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
            torch.set_rng_state(torch.tensor(state["torch_cpu"], dtype=torch.uint8))
            if state.get("torch_cuda") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["torch_cuda"]])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{path!r} is not a valid random-generator state ({exc}). Resume from another checkpoint, or delete the file to resume without it.") from exc

    def _rotate_checkpoints(self) -> None:
        limit = self.args.save_total_limit
        if not self.args.should_save or limit is None:
            return
        checkpoints = sorted_checkpoints(self.args.output_dir)
        best = self.state.best_model_checkpoint
        if best is not None and os.path.abspath(best) in [os.path.abspath(c) for c in checkpoints]:
            # Keep the best; with a limit of 1 and load_best_model_at_end, keep the latest as well.
            limit = max(limit, 2) if self.args.load_best_model_at_end and limit == 1 and os.path.abspath(best) != os.path.abspath(checkpoints[-1]) else limit
            checkpoints = [c for c in checkpoints if os.path.abspath(c) != os.path.abspath(best)] + [best]
        for old in checkpoints[: max(len(checkpoints) - limit, 0)]:
            logger.info("Deleting %s (save_total_limit=%d).", old, self.args.save_total_limit)
            shutil.rmtree(old, ignore_errors=True)

    def _save(self, output_dir: str) -> None:
        model = self._unwrapped
        if hasattr(model, "save_pretrained"):
            model.save_pretrained(output_dir, safe_serialization=self.args.save_safetensors)
        else:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(output_dir, "model.safetensors"))
        if self.processing_class is not None and hasattr(self.processing_class, "save_pretrained"):
            self.processing_class.save_pretrained(output_dir)
        atomic_write_text(os.path.join(output_dir, TRAINING_ARGS_NAME), self.args.to_json_string() + "\n")

    def save_model(self, output_dir: str | None = None) -> None:
        """The model (and the tokenizer or processor) in ``output_dir``, loadable by ``from_pretrained``.
        Only the first process writes."""
        output_dir = output_dir or self.args.output_dir
        if self.args.should_save:
            os.makedirs(output_dir, exist_ok=True)
            self._save(output_dir)
        self._barrier()

    def save_state(self) -> None:
        if self.args.should_save:
            os.makedirs(self.args.output_dir, exist_ok=True)
            self.state.save_to_json(os.path.join(self.args.output_dir, TRAINER_STATE_NAME))

    def log_metrics(self, split: str, metrics: dict[str, float]) -> None:
        if self.args.should_log:
            for key in sorted(metrics):
                logger.info("%s %s = %s", split, key, metrics[key])

    def save_metrics(self, split: str, metrics: dict[str, float]) -> None:
        if self.args.should_save:
            os.makedirs(self.args.output_dir, exist_ok=True)
            atomic_write_text(os.path.join(self.args.output_dir, f"{split}_results.json"), json.dumps(denumpify(metrics), indent=2, sort_keys=True) + "\n")

    def is_world_process_zero(self) -> bool:
        return self.args.process_index == 0


# --- helpers -------------------------------------------------------------------------------------


def _is_dataset_dict(value: Any) -> bool:
    """``{name: dataset}`` (evaluated one by one), as opposed to one dataset given as ``{column: values}``."""
    if not isinstance(value, Mapping) or not value:
        return False
    return all(
        isinstance(v, Dataset) or hasattr(v, "column_names") or (isinstance(v, (list, tuple)) and len(v) > 0 and isinstance(v[0], Mapping))
        for v in value.values()
    )


def _batch_size(inputs: Any) -> int:
    values: Iterable[Any] = inputs.values() if isinstance(inputs, Mapping) else inputs
    for value in values:
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            return int(value.shape[0])
        if isinstance(value, (list, tuple)):
            return len(value)
    return 1


def _to_numpy(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_to_numpy(v) for v in value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return value


def _pad_to(array: np.ndarray, width: int, pad_value: int = -100) -> np.ndarray:
    if array.ndim < 2 or array.shape[1] == width:
        return array
    pad = [(0, 0)] * array.ndim
    pad[1] = (0, width - array.shape[1])
    return np.pad(array, pad, constant_values=pad_value)


def _concat(old: Any, new: Any) -> Any:
    """Concatenates batches along the first axis; sequences of different lengths are padded with
    -100 along the second (Transformers' rule)."""
    if old is None:
        return new
    if isinstance(new, tuple):
        return tuple(_concat(o, n) for o, n in zip(old, new))
    if not isinstance(new, np.ndarray) or new.ndim == 0:
        return old
    if new.ndim > 1 and old.shape[1] != new.shape[1]:
        width = max(old.shape[1], new.shape[1])
        old, new = _pad_to(old, width), _pad_to(new, width)
    return np.concatenate([old, new], axis=0)


def _is_tied(model: nn.Module, key: str) -> bool:
    """Whether ``key`` is a parameter shared with another (e.g. tied word embeddings)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    target = params.get(key)
    return target is not None and any(p is target and k != key for k, p in params.items())


def _safe_torch_load(path: str, map_location: Any) -> Any:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling refusal or corrupt file
        raise CheckpointError(
            f"{path!r} could not be read as tensors and numbers only (torch.load(weights_only=True)): {exc}. "
            f"Resume from a checkpoint written by this Trainer."
        ) from exc


def _python_rng_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _numpy_rng_state() -> list:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: str) -> None:
    """Flush every file of a finished checkpoint to disk before it is renamed into place."""
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(root)
