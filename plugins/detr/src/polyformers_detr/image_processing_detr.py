"""``DetrImageProcessor``: images (and COCO annotations) -> DETR inputs, and DETR outputs -> results.

Follows Transformers' (PIL/numpy) ``DetrImageProcessor`` step by step, so that pixel values,
pixel masks and labels are identical: convert to RGB, resize (Pillow, bilinear) so the shorter
edge is 800 and the longer at most 1333, rescale by 1/255, normalize with the ImageNet mean/std,
pad the batch to its largest size with a ``pixel_mask``. Boxes become normalized
``(center_x, center_y, width, height)``.

The post-processing methods take PyTorch tensors, as Transformers' do; torch is imported inside them.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from polyformers.errors import ImageInputError
from polyformers.image_processing_utils import BaseImageProcessor, BatchFeature, get_size_dict
from polyformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    AnnotationFormat,
    ChannelDimension,
    PaddingMode,
    PILImageResampling,
    convert_to_rgb,
    corners_to_center_format,
    center_to_corners_format,
    get_image_size,
    get_image_size_for_max_height_width,
    get_max_height_width,
    get_size_with_aspect_ratio,
    infer_channel_dimension_format,
    is_pil_image,
    make_list_of_images,
    pad,
    resize,
    to_channel_dimension_format,
    to_numpy_array,
)

SUPPORTED_ANNOTATION_FORMATS = (AnnotationFormat.COCO_DETECTION, AnnotationFormat.COCO_PANOPTIC)

__all__ = ["DetrImageProcessor"]


# --- annotations -------------------------------------------------------------------------------


def convert_coco_poly_to_mask(segmentations: list, height: int, width: int) -> np.ndarray:
    """COCO polygons -> binary masks ``(num_objects, height, width)``; needs pycocotools."""
    try:
        from pycocotools import mask as coco_mask
    except ImportError as exc:
        raise ImportError("Segmentation masks from COCO polygons need pycocotools: pip install pycocotools") from exc
    masks = []
    for polygons in segmentations:
        rles = coco_mask.frPyObjects(polygons, height, width)
        mask = coco_mask.decode(rles)
        if len(mask.shape) < 3:
            mask = mask[..., None]
        masks.append(np.any(np.asarray(mask, dtype=np.uint8), axis=2))
    return np.stack(masks, axis=0) if masks else np.zeros((0, height, width), dtype=np.uint8)


def prepare_coco_detection_annotation(image: np.ndarray, target: dict, return_segmentation_masks: bool = False) -> dict:
    """A COCO detection target -> DETR's: corner boxes clipped to the image, crowd boxes dropped.

    ``image`` is channels first.
    """
    image_height, image_width = get_image_size(image, ChannelDimension.FIRST)
    annotations = [obj for obj in target["annotations"] if "iscrowd" not in obj or obj["iscrowd"] == 0]
    classes = np.asarray([obj["category_id"] for obj in annotations], dtype=np.int64)
    area = np.asarray([obj["area"] for obj in annotations], dtype=np.float32)
    iscrowd = np.asarray([obj.get("iscrowd", 0) for obj in annotations], dtype=np.int64)

    boxes = np.asarray([obj["bbox"] for obj in annotations], dtype=np.float32).reshape(-1, 4)  # (N, 4) xywh
    boxes[:, 2:] += boxes[:, :2]  # -> x0 y0 x1 y1
    boxes[:, 0::2] = boxes[:, 0::2].clip(min=0, max=image_width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(min=0, max=image_height)
    keep = (boxes[:, 3] > boxes[:, 1]) & (boxes[:, 2] > boxes[:, 0])

    new_target = {
        "image_id": np.asarray([target["image_id"]], dtype=np.int64),
        "class_labels": classes[keep],
        "boxes": boxes[keep],
        "area": area[keep],
        "iscrowd": iscrowd[keep],
        "orig_size": np.asarray([int(image_height), int(image_width)], dtype=np.int64),
    }
    if annotations and "keypoints" in annotations[0]:
        keypoints = np.asarray([obj["keypoints"] for obj in annotations], dtype=np.float32)[keep]
        new_target["keypoints"] = keypoints.reshape((-1, 3)) if keypoints.shape[0] else keypoints
    if return_segmentation_masks:
        masks = convert_coco_poly_to_mask([obj["segmentation"] for obj in annotations], image_height, image_width)
        new_target["masks"] = masks[keep]
    return new_target


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Corner boxes ``(N, 4)`` around binary masks ``(N, H, W)``."""
    if masks.size == 0:
        return np.zeros((0, 4))
    h, w = masks.shape[-2:]
    y, x = np.meshgrid(np.arange(0, h, dtype=np.float32), np.arange(0, w, dtype=np.float32), indexing="ij")
    not_mask = ~(np.array(masks, dtype=bool))

    x_mask = masks * np.expand_dims(x, axis=0)
    x_max = x_mask.reshape(x_mask.shape[0], -1).max(-1)
    x_min = np.ma.array(x_mask, mask=not_mask).filled(fill_value=1e8)
    x_min = x_min.reshape(x_min.shape[0], -1).min(-1)

    y_mask = masks * np.expand_dims(y, axis=0)
    y_max = y_mask.reshape(x_mask.shape[0], -1).max(-1)
    y_min = np.ma.array(y_mask, mask=not_mask).filled(fill_value=1e8)
    y_min = y_min.reshape(y_min.shape[0], -1).min(-1)
    return np.stack([x_min, y_min, x_max, y_max], 1)


def rgb_to_id(color: Any) -> Any:
    """COCO panoptic PNG colour -> segment id (``R + 256 G + 256^2 B``)."""
    if isinstance(color, np.ndarray) and len(color.shape) == 3:
        if color.dtype == np.uint8:
            color = color.astype(np.int32)
        return color[:, :, 0] + 256 * color[:, :, 1] + 256 * 256 * color[:, :, 2]
    return int(color[0] + 256 * color[1] + 256 * 256 * color[2])


def prepare_coco_panoptic_annotation(image: np.ndarray, target: dict, masks_path: str | pathlib.Path, return_masks: bool = True) -> dict:
    """A COCO panoptic target (segments_info + PNG in ``masks_path``) -> DETR's, with masks and boxes."""
    image_height, image_width = get_image_size(image, ChannelDimension.FIRST)
    new_target = {
        "image_id": np.asarray([target["image_id"] if "image_id" in target else target["id"]], dtype=np.int64),
        "size": np.asarray([image_height, image_width], dtype=np.int64),
        "orig_size": np.asarray([image_height, image_width], dtype=np.int64),
    }
    if "segments_info" in target:
        if masks_path is None:
            raise ValueError("coco_panoptic annotations need masks_path, the folder holding their PNG files.")
        annotation_path = pathlib.Path(masks_path) / target["file_name"]
        import PIL.Image

        try:
            with PIL.Image.open(annotation_path) as png:
                masks = np.asarray(png, dtype=np.uint32)
        except (OSError, SyntaxError) as exc:
            raise ImageInputError(f"Cannot read the panoptic mask {os.fspath(annotation_path)!r} ({exc}).") from exc
        masks = rgb_to_id(masks)
        ids = np.array([segment_info["id"] for segment_info in target["segments_info"]])
        masks = (masks == ids[:, None, None]).astype(np.uint8)
        if return_masks:
            new_target["masks"] = masks
        new_target["boxes"] = masks_to_boxes(masks)
        new_target["class_labels"] = np.array([s["category_id"] for s in target["segments_info"]], dtype=np.int64)
        new_target["iscrowd"] = np.asarray([s["iscrowd"] for s in target["segments_info"]], dtype=np.int64)
        new_target["area"] = np.asarray([s["area"] for s in target["segments_info"]], dtype=np.float32)
    return new_target


def validate_annotations(annotation_format: AnnotationFormat, annotations: list[dict]) -> None:
    for i, annotation in enumerate(annotations):
        if annotation_format == AnnotationFormat.COCO_DETECTION:
            ok = (
                isinstance(annotation, dict)
                and "image_id" in annotation
                and isinstance(annotation.get("annotations"), (list, tuple))
                and all(isinstance(obj, dict) for obj in annotation["annotations"])
            )
            expected = '{"image_id": int, "annotations": [{"bbox": [x, y, w, h], "category_id": int, "area": float}, ...]}'
        else:
            ok = (
                isinstance(annotation, dict)
                and "image_id" in annotation
                and isinstance(annotation.get("segments_info"), (list, tuple))
                and "file_name" in annotation
            )
            expected = '{"image_id": int, "file_name": str, "segments_info": [{"id": int, "category_id": int, ...}, ...]}'
        if not ok:
            found = sorted(annotation) if isinstance(annotation, dict) else type(annotation).__name__
            raise ValueError(
                f"Annotation {i} is not a valid {annotation_format.value} annotation (got {found}); expected {expected}."
            )


# --- post-processing helpers (torch) -----------------------------------------------------------


def binary_mask_to_rle(mask: Any) -> list:
    """Run-length encoding (COCO style) of a binary mask ``(H, W)``."""
    if hasattr(mask, "numpy"):
        mask = mask.numpy()
    pixels = np.concatenate([[0], mask.flatten(), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return list(runs)


def convert_segmentation_to_rle(segmentation: Any) -> list:
    """One run-length encoding per segment id of a segmentation map ``(H, W)``."""
    import torch

    return [binary_mask_to_rle(torch.where(segmentation == idx, 1, 0)) for idx in torch.unique(segmentation)]


def remove_low_and_no_objects(masks: Any, scores: Any, labels: Any, object_mask_threshold: float, num_labels: int) -> tuple:
    """Drop queries predicting "no object" or scoring at most ``object_mask_threshold``."""
    if not (masks.shape[0] == scores.shape[0] == labels.shape[0]):
        raise ValueError(
            f"masks, scores and labels must have one entry per query, got {masks.shape[0]}, {scores.shape[0]} and {labels.shape[0]}."
        )
    to_keep = labels.ne(num_labels) & (scores > object_mask_threshold)
    return masks[to_keep], scores[to_keep], labels[to_keep]


def check_segment_validity(mask_labels: Any, mask_probs: Any, k: int, mask_threshold: float = 0.5, overlap_mask_area_threshold: float = 0.8) -> tuple:
    mask_k = mask_labels == k
    mask_k_area = mask_k.sum()
    original_area = (mask_probs[k] >= mask_threshold).sum()
    mask_exists = mask_k_area > 0 and original_area > 0
    # Drop segments that kept too little of their own mask after the argmax (tiny disconnected parts).
    if mask_exists and not (mask_k_area / original_area).item() > overlap_mask_area_threshold:
        mask_exists = False
    return mask_exists, mask_k


def compute_segments(
    mask_probs: Any,
    pred_scores: Any,
    pred_labels: Any,
    mask_threshold: float = 0.5,
    overlap_mask_area_threshold: float = 0.8,
    label_ids_to_fuse: set[int] | None = None,
    target_size: tuple[int, int] | None = None,
) -> tuple:
    import torch
    from torch import nn

    label_ids_to_fuse = label_ids_to_fuse or set()
    height = mask_probs.shape[1] if target_size is None else target_size[0]
    width = mask_probs.shape[2] if target_size is None else target_size[1]
    segmentation = torch.zeros((height, width), dtype=torch.int32, device=mask_probs.device)
    segments: list[dict] = []
    if target_size is not None:
        mask_probs = nn.functional.interpolate(mask_probs.unsqueeze(0), size=target_size, mode="bilinear", align_corners=False)[0]

    current_segment_id = 0
    mask_probs *= pred_scores.view(-1, 1, 1)  # weigh each mask by its query's score
    mask_labels = mask_probs.argmax(0)  # (H, W)
    stuff_memory_list: dict[int, int] = {}
    for k in range(pred_labels.shape[0]):
        pred_class = pred_labels[k].item()
        should_fuse = pred_class in label_ids_to_fuse
        mask_exists, mask_k = check_segment_validity(mask_labels, mask_probs, k, mask_threshold, overlap_mask_area_threshold)
        if mask_exists:
            if pred_class in stuff_memory_list:
                current_segment_id = stuff_memory_list[pred_class]
            else:
                current_segment_id += 1
            segmentation[mask_k] = current_segment_id
            segments.append(
                {"id": current_segment_id, "label_id": pred_class, "was_fused": should_fuse, "score": round(pred_scores[k].item(), 6)}
            )
            if should_fuse:
                stuff_memory_list[pred_class] = current_segment_id
    return segmentation, segments


# --- the processor -----------------------------------------------------------------------------


class DetrImageProcessor(BaseImageProcessor):
    """Image processor of DETR; the defaults are facebook/detr-resnet-50's.

    Args:
        format: annotation format, ``"coco_detection"`` or ``"coco_panoptic"``.
        do_resize: resize to ``size``.
        size: ``{"shortest_edge", "longest_edge"}`` (keep the aspect ratio: shorter edge
            ``shortest_edge`` unless the longer would pass ``longest_edge``), ``{"height", "width"}``
            or ``{"max_height", "max_width"}``. An int (with legacy ``max_size``) is a shorter edge.
        resample: Pillow filter for resizing (bilinear).
        do_rescale / rescale_factor: multiply pixel values by ``rescale_factor`` (1/255).
        do_normalize / image_mean / image_std: per-channel normalisation (ImageNet statistics).
        do_convert_annotations: convert boxes to normalized ``(cx, cy, w, h)``; defaults to ``do_normalize``.
        do_pad: pad the batch to its largest height and width (or ``pad_size``) and return a
            ``pixel_mask`` (1 = image, 0 = padding). ``pad_and_return_pixel_mask`` is its old name.
        pad_size: ``{"height", "width"}`` to pad every image to.

    Images may be PIL images, numpy arrays / tensors ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``, or
    file paths; grayscale and RGBA inputs are converted to RGB (alpha composited onto white).
    """

    model_input_names = ["pixel_values", "pixel_mask"]

    def __init__(
        self,
        format: str | AnnotationFormat = AnnotationFormat.COCO_DETECTION,
        do_resize: bool = True,
        size: dict[str, int] | int | None = None,
        resample: PILImageResampling | int = PILImageResampling.BILINEAR,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: float | list[float] | None = None,
        image_std: float | list[float] | None = None,
        do_convert_annotations: bool | None = None,
        do_pad: bool = True,
        pad_size: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        if "pad_and_return_pixel_mask" in kwargs:
            do_pad = kwargs.pop("pad_and_return_pixel_mask")
        max_size = kwargs.pop("max_size") if "max_size" in kwargs else (None if size is None else 1333)
        size = size if size is not None else {"shortest_edge": 800, "longest_edge": 1333}
        self.format = _annotation_format(format).value
        self.do_resize = do_resize
        self.size = get_size_dict(size, max_size=max_size, default_to_square=False)
        self.resample = int(resample)
        self.do_rescale = do_rescale
        self.rescale_factor = rescale_factor
        self.do_normalize = do_normalize
        self.do_convert_annotations = do_normalize if do_convert_annotations is None else do_convert_annotations
        self.image_mean = _json_ready(image_mean if image_mean is not None else IMAGENET_DEFAULT_MEAN)
        self.image_std = _json_ready(image_std if image_std is not None else IMAGENET_DEFAULT_STD)
        self.do_pad = do_pad
        self.pad_size = pad_size
        super().__init__(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_valid_processor_keys", None)
        return output

    # --- single steps --------------------------------------------------------------------------

    def prepare_annotation(
        self,
        image: np.ndarray,
        target: dict,
        format: str | AnnotationFormat | None = None,
        return_segmentation_masks: bool | None = None,
        masks_path: str | pathlib.Path | None = None,
    ) -> dict:
        """A COCO annotation of a channels-first ``image`` -> a DETR target dict of numpy arrays."""
        format = _annotation_format(format if format is not None else self.format)
        if format == AnnotationFormat.COCO_DETECTION:
            return prepare_coco_detection_annotation(image, target, bool(return_segmentation_masks))
        return_masks = True if return_segmentation_masks is None else return_segmentation_masks
        return prepare_coco_panoptic_annotation(image, target, masks_path=masks_path, return_masks=return_masks)

    def resize(self, image: np.ndarray, size: dict[str, int], resample: PILImageResampling | int | None = None, **kwargs: Any) -> np.ndarray:
        """Resize a channels-first image according to a ``size`` dict (see the class docstring)."""
        resample = self.resample if resample is None else resample
        new_size = self._output_size(get_image_size(image, ChannelDimension.FIRST), size)
        return resize(image, new_size, resample=resample, input_data_format=ChannelDimension.FIRST)

    @staticmethod
    def _output_size(image_size: tuple[int, int], size: dict[str, int]) -> tuple[int, int]:
        if size.get("shortest_edge"):
            return get_size_with_aspect_ratio(image_size, size["shortest_edge"], size.get("longest_edge"))
        if size.get("max_height") and size.get("max_width"):
            return get_image_size_for_max_height_width(image_size, size["max_height"], size["max_width"])
        if size.get("height") and size.get("width"):
            return size["height"], size["width"]
        raise ValueError(
            f"size must have the keys 'shortest_edge' and 'longest_edge', 'max_height' and 'max_width', or "
            f"'height' and 'width'; got {size}."
        )

    def resize_annotation(
        self,
        annotation: dict[str, Any],
        orig_size: tuple[int, int],
        target_size: tuple[int, int],
        threshold: float = 0.5,
        resample: PILImageResampling | int = PILImageResampling.NEAREST,
    ) -> dict[str, Any]:
        """Scale boxes and areas, and resize masks, from ``orig_size`` to ``target_size``."""
        ratio_height, ratio_width = (float(s) / float(s_orig) for s, s_orig in zip(target_size, orig_size))
        new_annotation: dict[str, Any] = {"size": target_size}
        for key, value in annotation.items():
            if key == "boxes":
                new_annotation["boxes"] = value * np.asarray([ratio_width, ratio_height, ratio_width, ratio_height], dtype=np.float32)
            elif key == "area":
                new_annotation["area"] = value * (ratio_width * ratio_height)
            elif key == "masks":
                masks = np.array([resize(mask, target_size, resample=resample) for mask in value[:, None]])
                new_annotation["masks"] = masks.astype(np.float32)[:, 0] > threshold
            elif key == "size":
                new_annotation["size"] = target_size
            else:
                new_annotation[key] = value
        return new_annotation

    def normalize_annotation(self, annotation: dict, image_size: tuple[int, int]) -> dict:
        """Corner boxes in pixels -> ``(cx, cy, w, h)`` relative to ``image_size``."""
        image_height, image_width = image_size
        out = dict(annotation)
        if "boxes" in annotation:
            boxes = corners_to_center_format(annotation["boxes"])
            boxes /= np.asarray([image_width, image_height, image_width, image_height], dtype=np.float32)
            out["boxes"] = boxes
        return out

    def _update_annotation_for_padded_image(
        self, annotation: dict, input_image_size: tuple[int, int], output_image_size: tuple[int, int], padding: tuple, update_bboxes: bool
    ) -> dict:
        new_annotation: dict[str, Any] = {"size": output_image_size}
        for key, value in annotation.items():
            if key == "masks":
                new_annotation["masks"] = pad(value, padding, mode=PaddingMode.CONSTANT, constant_values=0, input_data_format=ChannelDimension.FIRST)
            elif key == "boxes" and update_bboxes:
                # Normalized boxes are relative to the image: rescale them to the padded canvas.
                value *= np.asarray(
                    [
                        input_image_size[1] / output_image_size[1],
                        input_image_size[0] / output_image_size[0],
                        input_image_size[1] / output_image_size[1],
                        input_image_size[0] / output_image_size[0],
                    ]
                )
                new_annotation["boxes"] = value
            elif key == "size":
                new_annotation["size"] = output_image_size
            else:
                new_annotation[key] = value
        return new_annotation

    def _pad_image(
        self,
        image: np.ndarray,
        output_size: tuple[int, int],
        annotation: dict | None = None,
        constant_values: float = 0,
        update_bboxes: bool = True,
    ) -> tuple[np.ndarray, dict | None]:
        """Pad a channels-first image at the bottom and right to ``output_size``."""
        input_height, input_width = get_image_size(image, ChannelDimension.FIRST)
        output_height, output_width = output_size
        pad_bottom, pad_right = output_height - input_height, output_width - input_width
        if pad_bottom < 0 or pad_right < 0:
            raise ValueError(
                f"Cannot pad an image of size {(input_height, input_width)} to the smaller size {tuple(output_size)}; "
                f"pad_size must be at least as large as every image after resizing."
            )
        padding = ((0, pad_bottom), (0, pad_right))
        padded = pad(image, padding, mode=PaddingMode.CONSTANT, constant_values=constant_values, input_data_format=ChannelDimension.FIRST)
        if annotation is not None:
            annotation = self._update_annotation_for_padded_image(
                annotation, (input_height, input_width), (output_height, output_width), padding, update_bboxes
            )
        return padded, annotation

    def pad(
        self,
        images: list[np.ndarray],
        annotations: list[dict] | None = None,
        constant_values: float = 0,
        return_pixel_mask: bool = True,
        return_tensors: str | None = None,
        data_format: ChannelDimension | str | None = None,
        input_data_format: ChannelDimension | str | None = None,
        update_bboxes: bool = True,
        pad_size: dict[str, int] | None = None,
    ) -> BatchFeature:
        """Pad a batch to its largest height and width (or ``pad_size``), as Transformers 4's ``pad``.

        Returns ``pixel_values``, ``pixel_mask`` (if ``return_pixel_mask``) and, with annotations, ``labels``.
        """
        pad_size = pad_size if pad_size is not None else self.pad_size
        images = [to_numpy_array(image) for image in make_list_of_images(images)]
        if input_data_format is None:
            input_data_format = infer_channel_dimension_format(images[0])
        images = [to_channel_dimension_format(image, ChannelDimension.FIRST, input_data_format) for image in images]
        padded_size = (pad_size["height"], pad_size["width"]) if pad_size is not None else get_max_height_width(images, ChannelDimension.FIRST)
        annotation_list = annotations if annotations is not None else [None] * len(images)
        padded_images, padded_annotations, pixel_masks = [], [], []
        for image, annotation in zip(images, annotation_list):
            height, width = get_image_size(image, ChannelDimension.FIRST)
            if (height, width) != padded_size:
                image, annotation = self._pad_image(image, padded_size, annotation, constant_values, update_bboxes)
            mask = np.zeros(padded_size, dtype=np.int64)
            mask[:height, :width] = 1
            out_format = data_format if data_format is not None else input_data_format
            padded_images.append(to_channel_dimension_format(image, out_format, ChannelDimension.FIRST))
            padded_annotations.append(annotation)
            pixel_masks.append(mask)
        data: dict[str, Any] = {"pixel_values": padded_images}
        if return_pixel_mask:
            data["pixel_mask"] = pixel_masks
        encoded = BatchFeature(data, tensor_type=return_tensors)
        if annotations is not None:
            encoded["labels"] = [BatchFeature(a, tensor_type=return_tensors) for a in padded_annotations]
        return encoded

    # --- the whole pipeline --------------------------------------------------------------------

    def preprocess(
        self,
        images: Any,
        annotations: dict | list[dict] | None = None,
        return_segmentation_masks: bool | None = None,
        masks_path: str | pathlib.Path | None = None,
        do_resize: bool | None = None,
        size: dict[str, int] | int | None = None,
        resample: PILImageResampling | int | None = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_normalize: bool | None = None,
        do_convert_annotations: bool | None = None,
        image_mean: float | list[float] | None = None,
        image_std: float | list[float] | None = None,
        do_pad: bool | None = None,
        format: str | AnnotationFormat | None = None,
        return_tensors: str | None = None,
        data_format: ChannelDimension | str = ChannelDimension.FIRST,
        input_data_format: ChannelDimension | str | None = None,
        pad_size: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Images (and annotations) -> ``pixel_values``, ``pixel_mask`` and ``labels``.

        Arguments left ``None`` take the processor's settings. ``annotations``: one COCO dict per
        image (``{"image_id", "annotations"}`` for detection, ``{"image_id", "file_name",
        "segments_info"}`` plus ``masks_path`` for panoptic). ``return_tensors``: ``"pt"``,
        ``"np"``, ``"tf"``, ``"jax"`` or ``None`` (lists of numpy arrays).
        """
        if "pad_and_return_pixel_mask" in kwargs:
            do_pad = kwargs.pop("pad_and_return_pixel_mask")
        max_size = kwargs.pop("max_size", None)
        # Transformers 5 converts to RGB only when asked; here non-RGB images are always converted
        # (normalizing them with three means would fail), so the flag changes nothing.
        kwargs.pop("do_convert_rgb", None)
        if kwargs:
            raise TypeError(f"preprocess() got unexpected keyword arguments: {sorted(kwargs)}.")
        do_resize = self.do_resize if do_resize is None else do_resize
        size = self.size if size is None else get_size_dict(size, max_size=max_size, default_to_square=False)
        resample = self.resample if resample is None else resample
        do_rescale = self.do_rescale if do_rescale is None else do_rescale
        rescale_factor = self.rescale_factor if rescale_factor is None else rescale_factor
        do_normalize = self.do_normalize if do_normalize is None else do_normalize
        image_mean = self.image_mean if image_mean is None else image_mean
        image_std = self.image_std if image_std is None else image_std
        do_convert_annotations = self.do_convert_annotations if do_convert_annotations is None else do_convert_annotations
        do_pad = self.do_pad if do_pad is None else do_pad
        pad_size = self.pad_size if pad_size is None else pad_size
        format = _annotation_format(self.format if format is None else format)

        images = [self._to_rgb_channels_first(image, input_data_format) for image in make_list_of_images(images)]
        if annotations is not None and isinstance(annotations, dict):
            annotations = [annotations]
        if annotations is not None:
            if len(images) != len(annotations):
                raise ValueError(f"Got {len(images)} images but {len(annotations)} annotations; pass one annotation per image.")
            validate_annotations(format, annotations)
        if masks_path is not None and format == AnnotationFormat.COCO_PANOPTIC and not isinstance(masks_path, (str, pathlib.Path)):
            raise ValueError(f"masks_path must be a str or pathlib.Path, got {type(masks_path).__name__}.")

        processed_images, processed_annotations = [], []
        for image, annotation in zip(images, annotations if annotations is not None else [None] * len(images)):
            if annotation is not None:
                annotation = self.prepare_annotation(image, annotation, format, return_segmentation_masks, masks_path)
            if do_resize:
                resized = self.resize(image, size, resample)
                if annotation is not None:
                    annotation = self.resize_annotation(
                        annotation, get_image_size(image, ChannelDimension.FIRST), get_image_size(resized, ChannelDimension.FIRST)
                    )
                image = resized
            if do_rescale:
                image = self.rescale(image, rescale_factor, input_data_format=ChannelDimension.FIRST)
            if do_normalize:
                image = self.normalize(image, image_mean, image_std, input_data_format=ChannelDimension.FIRST)
            if do_convert_annotations and annotation is not None:
                annotation = self.normalize_annotation(annotation, get_image_size(image, ChannelDimension.FIRST))
            processed_images.append(image)
            processed_annotations.append(annotation)

        data: dict[str, Any] = {}
        if do_pad:
            padded_size = (pad_size["height"], pad_size["width"]) if pad_size is not None else get_max_height_width(processed_images, ChannelDimension.FIRST)
            pixel_masks = []
            for i, (image, annotation) in enumerate(zip(processed_images, processed_annotations)):
                height, width = get_image_size(image, ChannelDimension.FIRST)
                if (height, width) != padded_size:
                    image, annotation = self._pad_image(image, padded_size, annotation, update_bboxes=do_convert_annotations)
                mask = np.zeros(padded_size, dtype=np.int64)
                mask[:height, :width] = 1
                processed_images[i], processed_annotations[i] = image, annotation
                pixel_masks.append(mask)
            data["pixel_mask"] = pixel_masks
        data["pixel_values"] = [to_channel_dimension_format(image, data_format, ChannelDimension.FIRST) for image in processed_images]
        encoded = BatchFeature(data, tensor_type=return_tensors)
        if annotations is not None:
            encoded["labels"] = [BatchFeature(a, tensor_type=return_tensors) for a in processed_annotations]
        return encoded

    @staticmethod
    def _to_rgb_channels_first(image: Any, input_data_format: ChannelDimension | str | None) -> np.ndarray:
        if is_pil_image(image):
            return np.moveaxis(np.array(convert_to_rgb(image)), -1, 0)
        image = to_numpy_array(image)
        if image.ndim == 2:
            image, input_data_format = image[None], ChannelDimension.FIRST
        elif image.ndim != 3:
            raise ImageInputError(f"An image must have 2 or 3 dimensions ((H, W), (H, W, C) or (C, H, W)), got shape {image.shape}.")
        if input_data_format is None:
            input_data_format = infer_channel_dimension_format(image, num_channels=(1, 3, 4))
        image = to_channel_dimension_format(image, ChannelDimension.FIRST, input_data_format)
        if image.shape[0] != 3:
            image = convert_to_rgb(image, ChannelDimension.FIRST)
        return image

    # --- post-processing (PyTorch) -------------------------------------------------------------

    def post_process_object_detection(self, outputs: Any, threshold: float = 0.5, target_sizes: Any = None) -> list[dict]:
        """``DetrForObjectDetection`` outputs -> per image ``{"scores", "labels", "boxes"}``.

        Boxes are ``(x0, y0, x1, y1)``, in pixels of ``target_sizes`` (``(height, width)`` per
        image, a list or a ``(B, 2)`` tensor) when given, else relative.
        """
        import torch

        out_logits, out_bbox = outputs.logits, outputs.pred_boxes
        if target_sizes is not None and len(out_logits) != len(target_sizes):
            raise ValueError(f"Got {len(target_sizes)} target sizes for a batch of {len(out_logits)}; pass one (height, width) per image.")
        prob = torch.nn.functional.softmax(out_logits, -1)
        scores, labels = prob[..., :-1].max(-1)  # the last class is "no object"
        boxes = center_to_corners_format(out_bbox)
        if target_sizes is not None:
            if isinstance(target_sizes, list):
                img_h = torch.Tensor([s[0] for s in target_sizes])
                img_w = torch.Tensor([s[1] for s in target_sizes])
            else:
                img_h, img_w = target_sizes.unbind(1)
            scale_fct = torch.stack([img_w, img_h, img_w, img_h], dim=1).to(boxes.device)
            boxes = boxes * scale_fct[:, None, :]
        results = []
        for s, l, b in zip(scores, labels, boxes):
            keep = s > threshold
            results.append({"scores": s[keep], "labels": l[keep], "boxes": b[keep]})
        return results

    def post_process_semantic_segmentation(
        self, outputs: Any, target_sizes: list[tuple[int, int]] | None = None, return_segmentation_scores: bool = False
    ) -> list:
        """``DetrForSegmentation`` outputs -> per image a class-id map ``(H, W)``.

        With ``return_segmentation_scores``, each item is a ``BatchFeature`` with ``segmentation``
        and ``segmentation_scores`` ``(num_classes, H, W)``.
        """
        import torch
        from torch import nn

        class_queries_logits = outputs.logits  # (B, Q, C + 1)
        masks_queries_logits = outputs.pred_masks  # (B, Q, H, W)
        masks_classes = class_queries_logits.softmax(dim=-1)[..., :-1]
        masks_probs = masks_queries_logits.sigmoid()
        segmentation = torch.einsum("bqc, bqhw -> bchw", masks_classes, masks_probs)  # (B, C, H, W)
        batch_size = class_queries_logits.shape[0]
        results = []
        if target_sizes is not None:
            if batch_size != len(target_sizes):
                raise ValueError(f"Got {len(target_sizes)} target sizes for a batch of {batch_size}; pass one (height, width) per image.")
            for idx in range(batch_size):
                resized = nn.functional.interpolate(segmentation[idx].unsqueeze(dim=0), size=target_sizes[idx], mode="bilinear", align_corners=False)
                results.append((resized[0].argmax(dim=0), resized[0]))
        else:
            semantic_map = segmentation.argmax(dim=1)
            results = [(semantic_map[i], segmentation[i]) for i in range(batch_size)]
        if return_segmentation_scores:
            return [BatchFeature({"segmentation": seg, "segmentation_scores": scores}) for seg, scores in results]
        return [seg for seg, _ in results]

    def post_process_instance_segmentation(
        self,
        outputs: Any,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        overlap_mask_area_threshold: float = 0.8,
        target_sizes: list[tuple[int, int]] | None = None,
        return_coco_annotation: bool | None = False,
    ) -> list[dict]:
        """``DetrForSegmentation`` outputs -> per image ``{"segmentation", "segments_info"}`` (instances)."""
        return self._post_process_segments(
            outputs, threshold, mask_threshold, overlap_mask_area_threshold, set(), target_sizes, bool(return_coco_annotation)
        )

    def post_process_panoptic_segmentation(
        self,
        outputs: Any,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        overlap_mask_area_threshold: float = 0.8,
        label_ids_to_fuse: set[int] | None = None,
        target_sizes: list[tuple[int, int]] | None = None,
    ) -> list[dict]:
        """``DetrForSegmentation`` outputs -> per image ``{"segmentation", "segments_info"}``.

        Instances of a class in ``label_ids_to_fuse`` (stuff, e.g. sky) share one segment.
        """
        return self._post_process_segments(
            outputs, threshold, mask_threshold, overlap_mask_area_threshold, set(label_ids_to_fuse or ()), target_sizes, False
        )

    def _post_process_segments(
        self,
        outputs: Any,
        threshold: float,
        mask_threshold: float,
        overlap_mask_area_threshold: float,
        label_ids_to_fuse: set[int],
        target_sizes: list[tuple[int, int]] | None,
        return_coco_annotation: bool,
    ) -> list[dict]:
        import torch
        from torch import nn

        class_queries_logits = outputs.logits  # (B, Q, C + 1)
        masks_queries_logits = outputs.pred_masks  # (B, Q, H, W)
        batch_size = class_queries_logits.shape[0]
        if target_sizes is not None and len(target_sizes) != batch_size:
            raise ValueError(f"Got {len(target_sizes)} target sizes for a batch of {batch_size}; pass one (height, width) per image.")
        num_labels = class_queries_logits.shape[-1] - 1
        mask_probs = masks_queries_logits.sigmoid()
        pred_scores, pred_labels = nn.functional.softmax(class_queries_logits, dim=-1).max(-1)  # (B, Q)
        results = []
        for i in range(batch_size):
            mask_probs_item, pred_scores_item, pred_labels_item = remove_low_and_no_objects(
                mask_probs[i], pred_scores[i], pred_labels[i], threshold, num_labels
            )
            if mask_probs_item.shape[0] <= 0:  # no object kept
                height, width = target_sizes[i] if target_sizes is not None else mask_probs_item.shape[1:]
                results.append({"segmentation": torch.zeros((height, width)) - 1, "segments_info": []})
                continue
            segmentation, segments = compute_segments(
                mask_probs=mask_probs_item,
                pred_scores=pred_scores_item,
                pred_labels=pred_labels_item,
                mask_threshold=mask_threshold,
                overlap_mask_area_threshold=overlap_mask_area_threshold,
                label_ids_to_fuse=label_ids_to_fuse,
                target_size=target_sizes[i] if target_sizes is not None else None,
            )
            if return_coco_annotation:
                segmentation = convert_segmentation_to_rle(segmentation)
            results.append({"segmentation": segmentation, "segments_info": segments})
        return results


def _json_ready(values: float | list[float] | tuple[float, ...]) -> float | list[float]:
    return list(values) if isinstance(values, (list, tuple)) else values


def _annotation_format(value: str | AnnotationFormat) -> AnnotationFormat:
    try:
        return AnnotationFormat(value.value if isinstance(value, AnnotationFormat) else value)
    except ValueError:
        raise ValueError(
            f"format must be one of {[f.value for f in SUPPORTED_ANNOTATION_FORMATS]}, got {value!r}."
        ) from None
