"""``BaseImageProcessor``: turns images into model inputs; settings saved as ``preprocessor_config.json``.

The file is Transformers' (``image_processor_type`` names the class), so each side loads what the
other wrote. The transforms themselves live in :mod:`polyformers.image_utils`; no framework is
imported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import image_utils
from .feature_extraction_utils import FEATURE_EXTRACTOR_NAME, BatchFeature, FeatureExtractionMixin
from .image_utils import ChannelDimension

IMAGE_PROCESSOR_NAME = FEATURE_EXTRACTOR_NAME

__all__ = ["BaseImageProcessor", "BatchFeature", "IMAGE_PROCESSOR_NAME", "get_size_dict"]


class BaseImageProcessor(FeatureExtractionMixin):
    """Base class of image processors: ``__call__`` runs ``preprocess``; loading and saving as Transformers.

    Subclasses implement ``preprocess(images, **kwargs) -> BatchFeature``.
    """

    model_input_names: list[str] = ["pixel_values"]
    _kind = "image_processor"

    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, *args, **kwargs)

    def preprocess(self, images: Any, **kwargs: Any) -> BatchFeature:
        raise NotImplementedError(f"{type(self).__name__} must implement preprocess().")

    # --- shared transforms (methods so that subclasses can override one step) -----------------

    def rescale(
        self,
        image: np.ndarray,
        scale: float,
        data_format: ChannelDimension | str | None = None,
        input_data_format: ChannelDimension | str | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        return image_utils.rescale(image, scale, data_format=data_format, input_data_format=input_data_format)

    def normalize(
        self,
        image: np.ndarray,
        mean: float | Iterable[float],
        std: float | Iterable[float],
        data_format: ChannelDimension | str | None = None,
        input_data_format: ChannelDimension | str | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        return image_utils.normalize(image, mean, std, data_format=data_format, input_data_format=input_data_format)

    # --- loading (FeatureExtractionMixin's, with this kind's names) ---------------------------

    @classmethod
    def get_image_processor_dict(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read ``preprocessor_config.json`` (or the ``image_processor`` section of ``processor_config.json``)."""
        return cls.get_feature_extractor_dict(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _is_saved_type(cls, saved_type: str) -> bool:
        # Transformers names one family's processors Xxx, XxxFast and XxxPil; all share one file format.
        return _strip_backend_suffix(saved_type) == _strip_backend_suffix(cls.__name__)


def _strip_backend_suffix(name: str) -> str:
    for suffix in ("Fast", "Pil"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


_SIZE_KEY_SETS = (
    {"height", "width"},
    {"shortest_edge"},
    {"shortest_edge", "longest_edge"},
    {"longest_edge"},
    {"max_height", "max_width"},
)


def get_size_dict(
    size: int | Iterable[int] | dict[str, int] | None = None,
    max_size: int | None = None,
    height_width_order: bool = True,
    default_to_square: bool = True,
    param_name: str = "size",
) -> dict[str, int]:
    """Normalise a ``size`` argument to Transformers' dict form.

    An int is a square (``default_to_square``) or a shorter edge (with ``max_size`` as the longer
    edge limit); a pair is ``(height, width)`` (``(width, height)`` if not ``height_width_order``);
    a dict must use one of the known key sets.
    """
    if isinstance(size, dict):
        if set(size) not in _SIZE_KEY_SETS:
            raise ValueError(
                f"{param_name} must have one of these key sets: {[sorted(keys) for keys in _SIZE_KEY_SETS]}, "
                f"got {sorted(size)}."
            )
        return dict(size)
    if isinstance(size, int) and default_to_square:
        if max_size is not None:
            raise ValueError(f"Cannot use max_size with a square {param_name}: pass default_to_square=False.")
        return {"height": size, "width": size}
    if isinstance(size, int):
        out = {"shortest_edge": size}
        if max_size is not None:
            out["longest_edge"] = max_size
        return out
    if isinstance(size, (list, tuple)) and len(size) == 2:
        height, width = size if height_width_order else size[::-1]
        return {"height": height, "width": width}
    if size is None and max_size is not None:
        if default_to_square:
            raise ValueError(f"Cannot use max_size with a square {param_name}: pass default_to_square=False.")
        return {"longest_edge": max_size}
    raise ValueError(f"Could not make a size dict of {param_name}={size!r}: pass an int, (height, width) or a dict.")
