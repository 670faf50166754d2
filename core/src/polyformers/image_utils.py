"""Framework-free image helpers for image processors: loading, layout, resize, rescale, normalize, pad, boxes.

Images are numpy arrays, channels first ``(C, H, W)`` or channels last ``(H, W, C)``; the layout is
inferred when not given. The numerics follow Transformers' ``image_transforms`` exactly (resizing
goes through Pillow, as there), so outputs match a Transformers image processor bit for bit.
Pillow is imported only when a function needs it (loading, resizing); torch only when a box
function is given a torch tensor.
"""

from __future__ import annotations

import enum
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import ImageInputError, short_repr

IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406]
IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225]
IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5]
IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5]

# Pillow's default limit (Image.MAX_IMAGE_PIXELS): larger files are refused as decompression bombs.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485


class ChannelDimension(str, enum.Enum):
    FIRST = "channels_first"
    LAST = "channels_last"


class PILImageResampling(enum.IntEnum):
    """Pillow's resampling filters, under the same numbers (so saved ``"resample": 2`` means bilinear)."""

    NEAREST = 0
    LANCZOS = 1
    BILINEAR = 2
    BICUBIC = 3
    BOX = 4
    HAMMING = 5


class PaddingMode(str, enum.Enum):
    CONSTANT = "constant"
    REFLECT = "reflect"
    REPLICATE = "replicate"
    SYMMETRIC = "symmetric"


class AnnotationFormat(str, enum.Enum):
    COCO_DETECTION = "coco_detection"
    COCO_PANOPTIC = "coco_panoptic"


def _pil_image_module() -> Any:
    try:
        import PIL.Image
    except ImportError as exc:  # pragma: no cover - Pillow is a dependency of image plugins
        raise ImportError("Loading and resizing images needs Pillow: pip install pillow") from exc
    return PIL.Image


def is_pil_image(obj: Any) -> bool:
    """Whether ``obj`` is a ``PIL.Image.Image`` (without importing Pillow when it is not loaded)."""
    return any(cls.__module__.startswith("PIL.") and cls.__name__ == "Image" for cls in type(obj).__mro__)


def _is_torch_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


# --- loading -----------------------------------------------------------------------------------


def load_image(image: str | os.PathLike | Any, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> Any:
    """Open an image file (or pass a PIL image through) as an RGB ``PIL.Image.Image``.

    Grayscale, palette and 16-bit images are converted to RGB; transparency is composited onto
    white, as Transformers' ``convert_to_rgb`` does. Files larger than ``max_pixels`` pixels
    (``None``: only Pillow's own hard limit) are refused before being decoded, to stop
    decompression bombs.

    Raises:
        ImageInputError: the file is missing, not an image, truncated or too large.
    """
    Image = _pil_image_module()
    if is_pil_image(image):
        return convert_to_rgb(image)
    if not isinstance(image, (str, os.PathLike)):
        raise ImageInputError(
            f"load_image takes a file path or a PIL image, got {type(image).__name__}; pass numpy arrays "
            f"to the image processor directly."
        )
    path = os.fspath(image)
    shown = short_repr(path)
    if path.startswith(("http://", "https://")):
        raise ImageInputError(f"load_image does not download ({shown}); download the file and pass its path.")
    if not os.path.isfile(path):
        raise ImageInputError(f"Image file {shown} does not exist; check the path.")
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's warning; its hard error (twice its
            # MAX_IMAGE_PIXELS) still applies and is turned into an ImageInputError.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                if max_pixels is not None and width * height > max_pixels:
                    raise ImageInputError(
                        f"Image file {shown} is {width}x{height} = {width * height} pixels, more than the "
                        f"limit of {max_pixels} (a possible decompression bomb). Pass max_pixels=None "
                        f"(or a larger limit) if you trust the file."
                    )
                opened.load()
                return convert_to_rgb(opened)
    except ImageInputError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageInputError(
            f"Image file {shown} was refused by Pillow as a possible decompression bomb ({exc}). If you "
            f"trust the file, raise PIL.Image.MAX_IMAGE_PIXELS."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageInputError(f"{shown} is not an image file Pillow can read ({exc}).") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageInputError(f"Image file {shown} is corrupt or truncated ({exc}); re-download or re-save it.") from exc


def convert_to_rgb(image: Any, input_data_format: ChannelDimension | str | None = None) -> Any:
    """An RGB version of ``image``: a PIL image stays a PIL image, an array stays an array in its layout.

    Transparency is composited onto white; one channel is repeated three times.
    """
    if is_pil_image(image):
        Image = _pil_image_module()
        if image.mode == "RGB":
            return image
        has_alpha = "A" in image.getbands() or image.info.get("transparency") is not None
        if has_alpha:
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        if image.mode.startswith("I;16"):  # 16-bit gray: Pillow's convert("RGB") would clip at 255
            array = np.asarray(image, dtype=np.float64)
            return Image.fromarray(np.round(array / 65535.0 * 255).astype(np.uint8)).convert("RGB")
        return image.convert("RGB")
    image = _as_numpy(image)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1) if input_data_format != ChannelDimension.FIRST else np.repeat(image[None], 3, axis=0)
    if input_data_format is None:
        input_data_format = infer_channel_dimension_format(image, num_channels=(1, 3, 4))
    channel_axis = -1 if ChannelDimension(input_data_format) == ChannelDimension.LAST else 0
    image = np.moveaxis(image, channel_axis, -1)
    num_channels = image.shape[-1]
    if num_channels == 1:
        rgb = np.repeat(image, 3, axis=-1)
    elif num_channels == 4:
        if np.issubdtype(image.dtype, np.floating) and (image.min() < 0.0 or image.max() > 1.0):
            raise ImageInputError(
                f"An RGBA float image must hold values in [0, 1], got [{image.min()}, {image.max()}]."
            )
        white = 255 if np.issubdtype(image.dtype, np.integer) else 1.0
        alpha = image[..., 3:4] / white
        composite = alpha * image[..., :3] + (1 - alpha) * white
        rgb = np.round(composite).astype(image.dtype) if white == 255 else composite.astype(image.dtype)
    elif num_channels == 3:
        rgb = image
    else:
        raise ImageInputError(f"Cannot convert an image with {num_channels} channels to RGB; expected 1, 3 or 4.")
    return np.moveaxis(rgb, -1, channel_axis)


def _as_numpy(image: Any) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if is_pil_image(image):
        return np.array(image)
    if _is_torch_tensor(image):
        return image.detach().cpu().numpy()
    if hasattr(image, "numpy") and callable(image.numpy):  # TensorFlow / JAX arrays
        return np.asarray(image.numpy())
    if hasattr(image, "__array__"):
        return np.asarray(image)
    raise ImageInputError(
        f"Unsupported image type {type(image).__name__}; pass a PIL image, a numpy array, a torch tensor or a file path."
    )


def to_numpy_array(image: Any) -> np.ndarray:
    """A PIL image, tensor or array as a numpy array (PIL images become ``(H, W, C)`` uint8)."""
    return _as_numpy(image)


def is_valid_image(image: Any) -> bool:
    return is_pil_image(image) or (
        (isinstance(image, np.ndarray) or _is_torch_tensor(image) or hasattr(image, "__array__"))
        and getattr(image, "ndim", 0) in (2, 3)
    )


def make_list_of_images(images: Any) -> list[Any]:
    """One image, a list of images or a batched 4-D array -> a list of images.

    File paths are loaded with :func:`load_image`.
    """
    if isinstance(images, (str, os.PathLike)):
        return [load_image(images)]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageInputError("Got an empty list of images; pass at least one image.")
        out = []
        for i, image in enumerate(images):
            if isinstance(image, (str, os.PathLike)):
                image = load_image(image)
            if not is_valid_image(image):
                raise ImageInputError(
                    f"Image {i} has type {type(image).__name__} and {getattr(image, 'ndim', '?')} dimensions; "
                    f"expected a PIL image, a file path, or an array of shape (H, W), (H, W, C) or (C, H, W)."
                )
            out.append(image)
        return out
    if is_pil_image(images):
        return [images]
    ndim = getattr(images, "ndim", None)
    if ndim == 4:
        return list(images)
    if ndim in (2, 3):
        return [images]
    raise ImageInputError(
        f"Unsupported images of type {type(images).__name__} with ndim={ndim}; expected a PIL image, a file path, "
        f"an array of shape (H, W), (H, W, C), (C, H, W) or (B, ...) or a list of those."
    )


# --- layout ------------------------------------------------------------------------------------


def infer_channel_dimension_format(image: np.ndarray, num_channels: int | tuple[int, ...] | None = None) -> ChannelDimension:
    """Whether ``image`` (3-D, or batched 4-D/5-D) is channels first or last; first wins a tie."""
    num_channels = num_channels if num_channels is not None else (1, 3)
    num_channels = (num_channels,) if isinstance(num_channels, int) else tuple(num_channels)
    if image.ndim == 3:
        first_dim, last_dim = 0, 2
    elif image.ndim == 4:
        first_dim, last_dim = 1, 3
    elif image.ndim == 5:
        first_dim, last_dim = 2, 4
    else:
        raise ImageInputError(f"Unsupported number of image dimensions: {image.ndim} (shape {image.shape}); expected 3 to 5.")
    if image.shape[first_dim] in num_channels:
        return ChannelDimension.FIRST
    if image.shape[last_dim] in num_channels:
        return ChannelDimension.LAST
    raise ImageInputError(
        f"Cannot tell the channel axis of an image of shape {image.shape}: neither its first nor last axis has "
        f"{' or '.join(map(str, num_channels))} entries. Pass input_data_format='channels_first' or 'channels_last'."
    )


def get_channel_dimension_axis(image: np.ndarray, input_data_format: ChannelDimension | str | None = None) -> int:
    if input_data_format is None:
        input_data_format = infer_channel_dimension_format(image)
    if ChannelDimension(input_data_format) == ChannelDimension.FIRST:
        return image.ndim - 3
    return image.ndim - 1


def get_image_size(image: np.ndarray, channel_dim: ChannelDimension | str | None = None) -> tuple[int, int]:
    """``(height, width)`` of a channels-first or channels-last image."""
    if channel_dim is None:
        channel_dim = infer_channel_dimension_format(image)
    if ChannelDimension(channel_dim) == ChannelDimension.FIRST:
        return image.shape[-2], image.shape[-1]
    return image.shape[-3], image.shape[-2]


def to_channel_dimension_format(
    image: np.ndarray, channel_dim: ChannelDimension | str, input_channel_dim: ChannelDimension | str | None = None
) -> np.ndarray:
    """``image`` moved to the ``channel_dim`` layout."""
    if input_channel_dim is None:
        input_channel_dim = infer_channel_dimension_format(image)
    target, current = ChannelDimension(channel_dim), ChannelDimension(input_channel_dim)
    if target == current:
        return image
    if target == ChannelDimension.FIRST:
        return np.moveaxis(image, -1, -3)
    return np.moveaxis(image, -3, -1)


def get_max_height_width(images: Sequence[np.ndarray], input_data_format: ChannelDimension | str | None = None) -> tuple[int, int]:
    """The largest height and the largest width over ``images``."""
    sizes = [get_image_size(image, input_data_format) for image in images]
    return max(h for h, _ in sizes), max(w for _, w in sizes)


# --- output sizes ------------------------------------------------------------------------------


def get_size_with_aspect_ratio(image_size: tuple[int, int], size: int, max_size: int | None = None) -> tuple[int, int]:
    """``(height, width)`` with the shorter edge ``size`` unless the longer would exceed ``max_size``.

    DETR's rule (facebookresearch/detr ``datasets/transforms.py``), as Transformers computes it.
    """
    height, width = image_size
    raw_size = None
    if max_size is not None:
        min_original_size = float(min((height, width)))
        max_original_size = float(max((height, width)))
        if max_original_size / min_original_size * size > max_size:
            raw_size = max_size * min_original_size / max_original_size
            size = int(round(raw_size))
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    if width < height:
        ow = size
        oh = int(raw_size * height / width) if raw_size is not None else int(size * height / width)
    else:
        oh = size
        ow = int(raw_size * width / height) if raw_size is not None else int(size * width / height)
    return oh, ow


def get_resize_output_image_size(
    input_image: np.ndarray,
    size: int | Sequence[int],
    default_to_square: bool = True,
    max_size: int | None = None,
    input_data_format: ChannelDimension | str | None = None,
) -> tuple[int, int]:
    """Target ``(height, width)``: ``size`` as (h, w), a square, or torchvision's shorter-edge rule."""
    if isinstance(size, (tuple, list)):
        if len(size) == 2:
            return tuple(size)
        if len(size) != 1:
            raise ValueError(f"size must have 1 or 2 elements if it is a list or tuple, got {size!r}.")
        size = size[0]
    if default_to_square:
        return size, size
    height, width = get_image_size(input_image, input_data_format)
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    if max_size is not None:
        if max_size <= size:
            raise ValueError(f"max_size = {max_size} must be strictly greater than the requested shorter edge size = {size}.")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


def get_image_size_for_max_height_width(image_size: tuple[int, int], max_height: int, max_width: int) -> tuple[int, int]:
    """The largest size with ``image_size``'s aspect ratio that fits in ``max_height`` x ``max_width``."""
    height, width = image_size
    scale = min(max_height / height, max_width / width)
    return int(height * scale), int(width * scale)


# --- transforms --------------------------------------------------------------------------------


def _needs_rescale_for_pil(image: np.ndarray) -> bool:
    """Whether a float image in [0, 1] must be scaled to [0, 255] to become a PIL image."""
    if image.dtype == np.uint8:
        return False
    if np.allclose(image, image.astype(int)):
        if np.all(image >= 0) and np.all(image <= 255):
            return False
        raise ImageInputError(
            f"Cannot resize an image with integer values outside [0, 255] (got [{image.min()}, {image.max()}]): "
            f"Pillow resizes 8-bit images. Scale it to [0, 255] or [0, 1] first."
        )
    if np.all(image >= 0) and np.all(image <= 1):
        return True
    raise ImageInputError(
        f"Cannot resize a float image with values outside [0, 1] (got [{image.min()}, {image.max()}]): Pillow "
        f"resizes 8-bit images. Resize before normalizing, or scale it to [0, 1] first."
    )


def resize(
    image: np.ndarray,
    size: tuple[int, int],
    resample: PILImageResampling | int | None = None,
    reducing_gap: int | None = None,
    data_format: ChannelDimension | str | None = None,
    input_data_format: ChannelDimension | str | None = None,
) -> np.ndarray:
    """Resize to ``size`` = ``(height, width)`` with Pillow, as Transformers' ``image_transforms.resize``.

    The image goes through an 8-bit PIL image: floats in [0, 1] are scaled to [0, 255] and back
    (so they come back quantised to 1/255 steps), uint8 stays uint8.
    """
    Image = _pil_image_module()
    resample = PILImageResampling.BILINEAR if resample is None else resample
    if len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}.")
    if input_data_format is None:
        input_data_format = infer_channel_dimension_format(image)
    data_format = input_data_format if data_format is None else data_format

    rescaled = _needs_rescale_for_pil(image)
    channels_last = to_channel_dimension_format(image, ChannelDimension.LAST, input_data_format)
    if channels_last.shape[-1] == 1:
        channels_last = np.squeeze(channels_last, axis=-1)
    if rescaled:
        channels_last = rescale(channels_last, 255)
    pil_image = Image.fromarray(channels_last.astype(np.uint8))

    height, width = size
    if height < 1 or width < 1:  # an extreme aspect ratio scaled to a short edge: Pillow would say only "must be > 0"
        raise ImageInputError(
            f"Cannot resize an image of {pil_image.height}x{pil_image.width} (height x width) to {height}x{width}: "
            f"its aspect ratio is too extreme for the requested size. Crop or pad it to a less elongated shape first."
        )
    resized = np.array(pil_image.resize((width, height), resample=int(resample), reducing_gap=reducing_gap))
    if resized.ndim == 2:
        resized = resized[..., None]
    resized = to_channel_dimension_format(resized, data_format, ChannelDimension.LAST)
    return rescale(resized, 1 / 255) if rescaled else resized


def rescale(
    image: np.ndarray,
    scale: float,
    data_format: ChannelDimension | str | None = None,
    dtype: np.dtype = np.float32,
    input_data_format: ChannelDimension | str | None = None,
) -> np.ndarray:
    """``image * scale`` computed in float64, returned as ``dtype`` (float32)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"rescale takes a numpy array, got {type(image).__name__}.")
    rescaled = image.astype(np.float64) * scale
    if data_format is not None:
        rescaled = to_channel_dimension_format(rescaled, data_format, input_data_format)
    return rescaled.astype(dtype)


def normalize(
    image: np.ndarray,
    mean: float | Iterable[float],
    std: float | Iterable[float],
    data_format: ChannelDimension | str | None = None,
    input_data_format: ChannelDimension | str | None = None,
) -> np.ndarray:
    """``(image - mean) / std`` per channel; integer images become float32, float images keep their dtype."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"normalize takes a numpy array, got {type(image).__name__}.")
    if input_data_format is None:
        input_data_format = infer_channel_dimension_format(image)
    num_channels = image.shape[get_channel_dimension_axis(image, input_data_format)]
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32)

    def per_channel(values: float | Iterable[float], name: str) -> np.ndarray:
        if isinstance(values, (int, float)):
            values = [values] * num_channels
        values = list(values)
        if len(values) != num_channels:
            raise ImageInputError(
                f"image_{name} has {len(values)} values but the image has {num_channels} channels; convert the "
                f"image to RGB or pass {num_channels} values."
            )
        return np.array(values, dtype=image.dtype)

    mean, std = per_channel(mean, "mean"), per_channel(std, "std")
    if ChannelDimension(input_data_format) == ChannelDimension.LAST:
        image = (image - mean) / std
    else:
        image = ((image.T - mean) / std).T
    return to_channel_dimension_format(image, data_format, input_data_format) if data_format is not None else image


def pad(
    image: np.ndarray,
    padding: int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]],
    mode: PaddingMode | str = PaddingMode.CONSTANT,
    constant_values: float | tuple = 0.0,
    data_format: ChannelDimension | str | None = None,
    input_data_format: ChannelDimension | str | None = None,
) -> np.ndarray:
    """Pad the height and width axes.

    ``padding``: ``((top, bottom), (left, right))``, ``(before, after)`` for both axes, or an int
    for every side.
    """
    if input_data_format is None:
        input_data_format = infer_channel_dimension_format(image)
    input_data_format = ChannelDimension(input_data_format)

    def expand(values: Any) -> tuple:
        if isinstance(values, (int, float)):
            values = ((values, values), (values, values))
        elif isinstance(values, tuple) and len(values) == 1:
            values = ((values[0], values[0]), (values[0], values[0]))
        elif isinstance(values, tuple) and len(values) == 2 and isinstance(values[0], (int, float)):
            values = (values, values)
        elif isinstance(values, tuple) and len(values) == 2 and isinstance(values[0], tuple):
            pass
        else:
            raise ValueError(f"Unsupported padding {values!r}: use an int, (before, after) or ((top, bottom), (left, right)).")
        values = ((0, 0), *values) if input_data_format == ChannelDimension.FIRST else (*values, (0, 0))
        return ((0, 0), *values) if image.ndim == 4 else values

    mode = PaddingMode(mode)
    pad_width = expand(padding)
    if mode == PaddingMode.CONSTANT:
        image = np.pad(image, pad_width, mode="constant", constant_values=expand(constant_values))
    else:
        numpy_mode = {PaddingMode.REFLECT: "reflect", PaddingMode.REPLICATE: "edge", PaddingMode.SYMMETRIC: "symmetric"}[mode]
        image = np.pad(image, pad_width, mode=numpy_mode)
    return to_channel_dimension_format(image, data_format, input_data_format) if data_format is not None else image


# --- boxes -------------------------------------------------------------------------------------


def center_to_corners_format(bboxes_center: Any) -> Any:
    """``(center_x, center_y, width, height)`` -> ``(x0, y0, x1, y1)``; numpy arrays or torch tensors."""
    if _is_torch_tensor(bboxes_center):
        import torch

        center_x, center_y, width, height = bboxes_center.unbind(-1)
        return torch.stack(
            [center_x - 0.5 * width, center_y - 0.5 * height, center_x + 0.5 * width, center_y + 0.5 * height], dim=-1
        )
    if isinstance(bboxes_center, np.ndarray):
        center_x, center_y, width, height = bboxes_center.T
        return np.stack(
            [center_x - 0.5 * width, center_y - 0.5 * height, center_x + 0.5 * width, center_y + 0.5 * height], axis=-1
        )
    raise TypeError(f"Boxes must be a numpy array or a torch tensor, got {type(bboxes_center).__name__}.")


def corners_to_center_format(bboxes_corners: Any) -> Any:
    """``(x0, y0, x1, y1)`` -> ``(center_x, center_y, width, height)``; numpy arrays or torch tensors."""
    if _is_torch_tensor(bboxes_corners):
        import torch

        x0, y0, x1, y1 = bboxes_corners.unbind(-1)
        return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0), (y1 - y0)], dim=-1)
    if isinstance(bboxes_corners, np.ndarray):
        x0, y0, x1, y1 = bboxes_corners.T
        return np.stack([(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0), (y1 - y0)], axis=-1)
    raise TypeError(f"Boxes must be a numpy array or a torch tensor, got {type(bboxes_corners).__name__}.")
