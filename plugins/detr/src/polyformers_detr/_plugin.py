"""The polyformers-detr plugin: what it registers with the polyformers core."""

from __future__ import annotations

from polyformers.hookspecs import ModelSpec, ProcessorSpec, hookimpl

POLYFORMERS_PLUGIN_API = 1

_PT_MODELS = {
    "base": "DetrModel",
    "object-detection": "DetrForObjectDetection",
    "image-segmentation": "DetrForSegmentation",
}
# Transformers has DETR in PyTorch only; the TensorFlow and Flax models follow its naming conventions.
_TF_MODELS = {task: "TF" + name for task, name in _PT_MODELS.items()}
_FLAX_MODELS = {task: "Flax" + name for task, name in _PT_MODELS.items()}


@hookimpl
def polyformers_configs():
    return {"detr": "polyformers_detr.configuration_detr:DetrConfig"}


@hookimpl
def polyformers_models():
    return [
        *(ModelSpec("detr", task, "pt", f"polyformers_detr.modeling_detr:{name}") for task, name in _PT_MODELS.items()),
        *(ModelSpec("detr", task, "tf", f"polyformers_detr.modeling_tf_detr:{name}") for task, name in _TF_MODELS.items()),
        *(ModelSpec("detr", task, "flax", f"polyformers_detr.modeling_flax_detr:{name}") for task, name in _FLAX_MODELS.items()),
    ]


@hookimpl
def polyformers_processors():
    return [ProcessorSpec("detr", "image_processor", "polyformers_detr.image_processing_detr:DetrImageProcessor")]


@hookimpl
def polyformers_framework_extras():
    return {"pt": "torch", "tf": "tf", "flax": "flax"}
