"""polyformers-bert: BERT models and tokenizers for polyformers.

Import classes from ``polyformers`` (``from polyformers import BertModel``) or from their modules
(``polyformers_bert.modeling_bert``); this package imports nothing heavy by itself.
"""

__version__ = "0.1.0"
