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
