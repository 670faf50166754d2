"""Wav2Vec2's processor: its feature extractor and CTC tokenizer in one object."""

from __future__ import annotations

from polyformers.processing_utils import ProcessorMixin

from .feature_extraction_wav2vec2 import Wav2Vec2FeatureExtractor
from .tokenization_wav2vec2 import Wav2Vec2CTCTokenizer


class Wav2Vec2Processor(ProcessorMixin):
    """``processor(audio, sampling_rate=16000, text=...)``; ``batch_decode`` turns CTC ids into text."""

    feature_extractor_class = Wav2Vec2FeatureExtractor
    tokenizer_class = Wav2Vec2CTCTokenizer
