"""Vision pipelines: ``object-detection`` and ``image-segmentation``.

Inputs are what Transformers' vision pipelines take — a file path or a ``PIL.Image`` — plus NumPy
arrays (``(H, W, C)`` or ``(C, H, W)``, uint8 or float in [0, 1]). Files go through
:func:`polyformers.image_utils.load_image` (EXIF orientation applied, grayscale/RGBA/palette
converted to RGB, decompression bombs refused with an
:class:`~polyformers.errors.ImageInputError`). The model's image processor prepares each image;
a batch of images of different sizes is padded at the bottom and right with ``pixel_mask`` zeros,
as the image processor itself pads a batch, and sorted by area like the text pipelines sort by
length. Post-processing is the image processor's own (``post_process_object_detection``,
``post_process_panoptic_segmentation``...), with Transformers' output formats:
``[{"score", "label", "box": {"xmin", "ymin", "xmax", "ymax"}}]`` and
``[{"score", "label", "mask": PIL.Image (mode "L")}]``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..errors import ImageInputError
from ..feature_extraction_utils import BatchFeature
from .base import Pipeline, _describe


class VisionPipeline(Pipeline):
    """What the image tasks share: loading images, the image processor, padded pixel batches."""

    model_input_keys = ("pixel_values", "pixel_mask")
    # One forward item per image, but as a "chunked" task so that its original size (metadata
    # beside the model inputs) reaches the postprocess.
    chunked = True

    def __init__(self, *args: Any, image_processor: Any = None, **kwargs: Any) -> None:
        self.image_processor = image_processor
        super().__init__(*args, **kwargs)
        if self.image_processor is None:
            raise TypeError(f"{type(self).__name__} needs an image_processor (e.g. AutoImageProcessor.from_pretrained(path)); pipeline(task, model=path) loads the model's own.")

    def _check_input(self, item: Any) -> None:
        from ..image_utils import is_pil_image

        if isinstance(item, (str, os.PathLike, np.ndarray, torch.Tensor)) or is_pil_image(item):
            return
        raise TypeError(f"{self.task or type(self).__name__} expects an image: a file path, a PIL image or a NumPy array (or a list of these); got {_describe(item)}.")

    def _image(self, inputs: Any) -> tuple[Any, tuple[int, int]]:
        """(the image for the processor, its original (height, width))."""
        from ..image_utils import get_image_size, infer_channel_dimension_format, is_pil_image, load_image

        if isinstance(inputs, (str, os.PathLike)) or is_pil_image(inputs):
            image = load_image(inputs)
            return image, (image.height, image.width)
        array = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
        if array.ndim not in (2, 3) or 0 in array.shape:
            raise ImageInputError(f"An image array must be (H, W), (H, W, C) or (C, H, W) with no empty axis; got shape {array.shape}.")
        if array.dtype != np.bool_ and not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise ImageInputError(f"An image array must hold real numbers (uint8 in [0, 255] or floats in [0, 1]); got dtype {array.dtype}. Convert it, e.g. array.astype(np.uint8).")
        if array.ndim == 3:
            try:
                channel_format = infer_channel_dimension_format(array)
            except ValueError as exc:
                raise ImageInputError(f"Cannot tell the channel axis of the image array of shape {array.shape} ({exc}); pass (H, W, 3) or (3, H, W).") from exc
            return array, get_image_size(array, channel_format)
        return array, (array.shape[0], array.shape[1])

    def preprocess(self, inputs: Any, **params: Any) -> list[dict[str, Any]]:
        image, target_size = self._image(inputs)
        processed = self.image_processor(images=[image], return_tensors="pt")
        features = {"pixel_values": processed["pixel_values"][0], "target_size": target_size}
        if "pixel_mask" in processed:
            features["pixel_mask"] = processed["pixel_mask"][0]
        return [features]

    def _item_length(self, feature: dict[str, Any]) -> int:
        return int(feature["pixel_values"].shape[-2] * feature["pixel_values"].shape[-1])

    def _collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        height = max(int(f["pixel_values"].shape[-2]) for f in features)
        width = max(int(f["pixel_values"].shape[-1]) for f in features)
        channels = int(features[0]["pixel_values"].shape[0])
        values = torch.zeros(len(features), channels, height, width, dtype=features[0]["pixel_values"].dtype)
        mask = torch.zeros(len(features), height, width, dtype=torch.long)
        for row, f in enumerate(features):
            h, w = f["pixel_values"].shape[-2:]
            values[row, :, :h, :w] = f["pixel_values"]
            mask[row, :h, :w] = f["pixel_mask"] if "pixel_mask" in f else 1
        return {"pixel_values": values.to(self.device), "pixel_mask": mask.to(self.device)}

    def _run_batch_outputs(self, model_inputs: dict[str, torch.Tensor], keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
        model_inputs = {k: v for k, v in model_inputs.items() if k in self.model_input_keys}
        outputs = self.model(**model_inputs)
        return {key: outputs[key] for key in keys if key in outputs}


class ObjectDetectionPipeline(VisionPipeline):
    """Boxes, labels and scores (``...ForObjectDetection`` models). Call parameter: ``threshold`` (default 0.5)."""

    def _sanitize_parameters(self, threshold: float | None = None, timeout: float | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}; it takes threshold.")
        post: dict[str, Any] = {}
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
                raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}.")
            post["threshold"] = threshold
        return {}, {}, post

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self._run_batch_outputs(model_inputs, ("logits", "pred_boxes"))

    def postprocess(self, windows: list[dict[str, Any]], threshold: float = 0.5) -> list[dict[str, Any]]:
        outputs = dict(windows[0])
        target_size = outputs.pop("target_size")
        found = self.image_processor.post_process_object_detection(BatchFeature(outputs), threshold=threshold, target_sizes=[target_size])[0]
        id2label = self.model.config.id2label
        return [
            {"score": score, "label": id2label[label], "box": _box(box)}
            for score, label, box in zip(found["scores"].tolist(), found["labels"].tolist(), found["boxes"])
        ]


class ImageSegmentationPipeline(VisionPipeline):
    """Masks as PIL images with labels and scores (``...ForSegmentation`` / ``...ForImageSegmentation`` models).

    Call parameters: ``subtask`` (``"panoptic"``, ``"instance"``, ``"semantic"``; default: the
    first the image processor supports in that order), ``threshold`` (0.9), ``mask_threshold``
    (0.5), ``overlap_mask_area_threshold`` (0.5).
    """

    def _sanitize_parameters(
        self, subtask: str | None = None, threshold: float | None = None, mask_threshold: float | None = None, overlap_mask_area_threshold: float | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}; it takes subtask, threshold, mask_threshold and overlap_mask_area_threshold.")
        if subtask not in (None, "panoptic", "instance", "semantic"):
            raise ValueError(f"subtask must be 'panoptic', 'instance' or 'semantic' (or None for the first supported), got {subtask!r}.")
        post: dict[str, Any] = {"subtask": subtask} if subtask is not None else {}
        for name, value in (("threshold", threshold), ("mask_threshold", mask_threshold), ("overlap_mask_area_threshold", overlap_mask_area_threshold)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
                post[name] = value
        return {}, {}, post

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self._run_batch_outputs(model_inputs, ("logits", "pred_boxes", "pred_masks"))

    def postprocess(self, windows: list[dict[str, Any]], subtask: str | None = None, threshold: float = 0.9, mask_threshold: float = 0.5, overlap_mask_area_threshold: float = 0.5) -> list[dict[str, Any]]:
        from PIL import Image

        outputs = dict(windows[0])
        target_size = outputs.pop("target_size")
        outputs = BatchFeature(outputs)
        id2label = self.model.config.id2label
        processor = self.image_processor
        fn = None
        if subtask in ("panoptic", None) and hasattr(processor, "post_process_panoptic_segmentation"):
            fn = processor.post_process_panoptic_segmentation
        elif subtask in ("instance", None) and hasattr(processor, "post_process_instance_segmentation"):
            fn = processor.post_process_instance_segmentation
        if fn is not None:
            result = fn(outputs, threshold=threshold, mask_threshold=mask_threshold, overlap_mask_area_threshold=overlap_mask_area_threshold, target_sizes=[target_size])[0]
            segmentation = result["segmentation"]
            annotation = []
            for segment in result["segments_info"]:
                mask = ((segmentation == segment["id"]) * 255).numpy().astype(np.uint8)
                annotation.append({"score": segment["score"], "label": id2label[segment["label_id"]], "mask": Image.fromarray(mask, mode="L")})
            return annotation
        if subtask in ("semantic", None) and hasattr(processor, "post_process_semantic_segmentation"):
            segmentation = processor.post_process_semantic_segmentation(outputs, target_sizes=[target_size])[0].numpy()
            return [{"score": None, "label": id2label[int(label)], "mask": Image.fromarray(((segmentation == label) * 255).astype(np.uint8), mode="L")} for label in np.unique(segmentation)]
        raise ValueError(f"Subtask {subtask!r} is not supported by {type(processor).__name__} (model {type(self.model).__name__}).")


def _box(box: torch.Tensor) -> dict[str, int]:
    xmin, ymin, xmax, ymax = box.int().tolist()
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}
