"""polyformers-wav2vec2: Wav2Vec2 speech models, feature extractor and CTC tokenizer for polyformers.

Import classes from ``polyformers`` (``from polyformers import Wav2Vec2ForCTC``); this package
imports nothing heavy by itself.
"""

__version__ = "0.1.0"
