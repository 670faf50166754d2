"""Batching of dataset examples for training: the data collators (no framework imported here)."""

from polyformers.data.data_collator import (
    DataCollator,
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    DataCollatorMixin,
    DataCollatorWithPadding,
    DefaultDataCollator,
    default_data_collator,
)

__all__ = [
    "DataCollator",
    "DataCollatorForLanguageModeling",
    "DataCollatorForTokenClassification",
    "DataCollatorMixin",
    "DataCollatorWithPadding",
    "DefaultDataCollator",
    "default_data_collator",
]
