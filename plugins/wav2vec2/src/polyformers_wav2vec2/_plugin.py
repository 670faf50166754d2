"""The polyformers-wav2vec2 plugin: what it registers with the polyformers core."""

from __future__ import annotations

from polyformers.hookspecs import ModelSpec, ProcessorSpec, TokenizerSpec, hookimpl

POLYFORMERS_PLUGIN_API = 1

_PT_MODELS = {
    "base": "Wav2Vec2Model",
    "pretraining": "Wav2Vec2ForPreTraining",
    "ctc": "Wav2Vec2ForCTC",
    "audio-classification": "Wav2Vec2ForSequenceClassification",
    "audio-frame-classification": "Wav2Vec2ForAudioFrameClassification",
    "audio-xvector": "Wav2Vec2ForXVector",
}
# TensorFlow and Flax carry the base model, CTC and sequence classification (Transformers' TF has
# no AutoModelForCTC and its Flax no sequence classification; both exist here).
_TF_MODELS = {task: "TF" + _PT_MODELS[task] for task in ("base", "ctc", "audio-classification")}
_FLAX_MODELS = {task: "Flax" + _PT_MODELS[task] for task in ("base", "ctc", "audio-classification")}


@hookimpl
def polyformers_configs():
    return {"wav2vec2": "polyformers_wav2vec2.configuration_wav2vec2:Wav2Vec2Config"}


@hookimpl
def polyformers_models():
    return [
        *(ModelSpec("wav2vec2", task, "pt", f"polyformers_wav2vec2.modeling_wav2vec2:{name}") for task, name in _PT_MODELS.items()),
        *(ModelSpec("wav2vec2", task, "tf", f"polyformers_wav2vec2.modeling_tf_wav2vec2:{name}") for task, name in _TF_MODELS.items()),
        *(ModelSpec("wav2vec2", task, "flax", f"polyformers_wav2vec2.modeling_flax_wav2vec2:{name}") for task, name in _FLAX_MODELS.items()),
    ]


@hookimpl
def polyformers_tokenizers():
    return [TokenizerSpec("wav2vec2", slow="polyformers_wav2vec2.tokenization_wav2vec2:Wav2Vec2CTCTokenizer", fast=None)]


@hookimpl
def polyformers_processors():
    return [
        ProcessorSpec("wav2vec2", "feature_extractor", "polyformers_wav2vec2.feature_extraction_wav2vec2:Wav2Vec2FeatureExtractor"),
        ProcessorSpec("wav2vec2", "processor", "polyformers_wav2vec2.processing_wav2vec2:Wav2Vec2Processor"),
    ]


@hookimpl
def polyformers_framework_extras():
    return {"pt": "torch", "tf": "tf", "flax": "flax"}
