"""polyformers: pretrained transformer models for PyTorch, TensorFlow and JAX/Flax, as plugins.

``import polyformers`` is cheap: it imports no framework and no plugin. Every public name is
resolved on first access, core names from core modules and model classes (``BertModel``,
``TFBertModel``…) through the plugin registry, which activates only the plugin that provides it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

_AUTO_NAMES = (
    "AutoConfig",
    "AutoTokenizer",
    "AutoFeatureExtractor",
    "AutoImageProcessor",
    "AutoProcessor",
)

# Core public names -> the module defining them (imported on first access).
_CORE_NAMES: dict[str, str] = {
    "PretrainedConfig": "configuration_utils",
    "PreTrainedConfig": "configuration_utils",
    "PreTrainedModel": "modeling_utils",
    "ModelOutput": "modeling_outputs",
    "PreTrainedTokenizerBase": "tokenization_utils_base",
    "BatchEncoding": "tokenization_utils_base",
    "AddedToken": "tokenization_utils_base",
    "PreTrainedTokenizer": "tokenization_utils",
    "PreTrainedTokenizerFast": "tokenization_utils_fast",
    "BatchFeature": "feature_extraction_utils",
    "FeatureExtractionMixin": "feature_extraction_utils",
    "SequenceFeatureExtractor": "feature_extraction_utils",
    "BaseImageProcessor": "image_processing_utils",
    "ProcessorMixin": "processing_utils",
    "pipeline": "pipelines",
    "Pipeline": "pipelines",
    "PIPELINE_REGISTRY": "pipelines",
    "FeatureExtractionPipeline": "pipelines",
    "SentenceEmbeddingsPipeline": "pipelines",
    "FillMaskPipeline": "pipelines",
    "TextClassificationPipeline": "pipelines",
    "TokenClassificationPipeline": "pipelines",
    "NerPipeline": "pipelines",
    "AggregationStrategy": "pipelines",
    "QuestionAnsweringPipeline": "pipelines",
    "ZeroShotClassificationPipeline": "pipelines",
    # Fine-tuning (PyTorch): the Trainer and what it is made of.
    "Trainer": "trainer",
    "TrainingArguments": "training_args",
    "IntervalStrategy": "trainer_utils",
    "EvalPrediction": "trainer_utils",
    "set_seed": "trainer_utils",
    "TrainerCallback": "trainer_callback",
    "TrainerControl": "trainer_callback",
    "TrainerState": "trainer_callback",
    "EarlyStoppingCallback": "trainer_callback",
    "PrinterCallback": "trainer_callback",
    "ProgressCallback": "trainer_callback",
    "DataCollatorWithPadding": "data.data_collator",
    "DataCollatorForTokenClassification": "data.data_collator",
    "DataCollatorForLanguageModeling": "data.data_collator",
    "DefaultDataCollator": "data.data_collator",
    "default_data_collator": "data.data_collator",
    "SchedulerType": "optimization",
    "get_scheduler": "optimization",
    "get_constant_schedule": "optimization",
    "get_constant_schedule_with_warmup": "optimization",
    "get_linear_schedule_with_warmup": "optimization",
    "get_cosine_schedule_with_warmup": "optimization",
    "get_cosine_with_hard_restarts_schedule_with_warmup": "optimization",
    "get_polynomial_decay_schedule_with_warmup": "optimization",
    "get_inverse_sqrt_schedule": "optimization",
    # Fine-tuning (TensorFlow, Flax).
    "create_optimizer": "optimization_tf",
    "AdamWeightDecay": "optimization_tf",
    "WarmUp": "optimization_tf",
    "FlaxTrainState": "training_flax",
    **{name: "auto" for name in _AUTO_NAMES},
}


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(f"module 'polyformers' has no attribute {name!r}")
    if name in _CORE_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_CORE_NAMES[name]}"), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")  # a submodule
    else:
        from .auto import AUTO_CLASSES

        if name in AUTO_CLASSES:
            value = AUTO_CLASSES[name]
        else:
            from .plugins import find_class

            # BertModel, TFBertModel, ... or an AttributeError with a hint. Not cached here: which
            # plugin serves a name can change (plugins.prefer, plugins.refresh).
            return find_class(name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    from .auto import AUTO_CLASSES

    return sorted(set(globals()) | set(_CORE_NAMES) | set(AUTO_CLASSES))
