"""The Hungarian matching of DETR's set loss, framework-free (NumPy + scipy).

The TensorFlow and Flax models match predictions to targets here, outside their graphs (scipy's
``linear_sum_assignment`` runs on host arrays); the PyTorch model's ``HungarianMatcher`` computes
the same cost in torch. :func:`check_labels` is the one check of the ``labels`` argument for all
three.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_labels(labels: Any, batch_size: int, with_masks: bool) -> None:
    """``labels`` must be one dict per image with ``class_labels`` and ``boxes`` (and ``masks`` for segmentation)."""
    if not isinstance(labels, (list, tuple)) or len(labels) != batch_size:
        got = f"a {type(labels).__name__}" + (f" of length {len(labels)}" if hasattr(labels, "__len__") else "")
        raise ValueError(f"labels must be a list of {batch_size} dicts (one per image), got {got}.")
    needed = ("class_labels", "boxes", "masks") if with_masks else ("class_labels", "boxes")
    for i, target in enumerate(labels):
        missing = [k for k in needed if k not in target]
        if missing:
            raise ValueError(f"labels[{i}] lacks {missing}; each target needs {list(needed)} (boxes as normalised cx, cy, w, h).")


def center_to_corners(boxes: np.ndarray) -> np.ndarray:
    """(center_x, center_y, width, height) -> (x0, y0, x1, y1)."""
    cx, cy, w, h = (boxes[..., i] for i in range(4))
    return np.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def generalized_box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Generalized IoU of (N, 4) and (M, 4) corner boxes: (N, M)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    inter = np.clip(np.minimum(boxes1[:, None, 2:], boxes2[:, 2:]) - np.maximum(boxes1[:, None, :2], boxes2[:, :2]), 0, None).prod(-1)
    union = area1[:, None] + area2 - inter
    enclosing = np.clip(np.maximum(boxes1[:, None, 2:], boxes2[:, 2:]) - np.minimum(boxes1[:, None, :2], boxes2[:, :2]), 0, None).prod(-1)
    return inter / union - (enclosing - union) / enclosing


def hungarian_match(config: Any, logits: Any, pred_boxes: Any, labels: list[dict[str, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image, (query indices, target indices) minimising ``class_cost``, ``bbox_cost`` (L1) and ``giou_cost``."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as exc:
        raise ImportError("DETR's loss needs scipy for the Hungarian matching: pip install scipy") from exc
    if config.class_cost == 0 and config.bbox_cost == 0 and config.giou_cost == 0:
        raise ValueError("The matcher's class_cost, bbox_cost and giou_cost are all 0; at least one must be non-zero.")
    logits, pred_boxes = np.asarray(logits, np.float32), np.asarray(pred_boxes, np.float32)
    indices = []
    for b, target in enumerate(labels):
        target_ids = np.asarray(target["class_labels"]).astype(np.int64).reshape(-1)
        target_boxes = np.asarray(target["boxes"], np.float32).reshape(-1, 4)
        prob = np.exp(logits[b] - logits[b].max(-1, keepdims=True))
        prob = prob / prob.sum(-1, keepdims=True)  # (Q, K)
        bbox_cost = np.abs(pred_boxes[b][:, None] - target_boxes[None]).sum(-1)
        giou_cost = -generalized_box_iou(center_to_corners(pred_boxes[b]), center_to_corners(target_boxes))
        cost = config.bbox_cost * bbox_cost - config.class_cost * prob[:, target_ids] + config.giou_cost * giou_cost
        largest = np.finfo(cost.dtype).max
        cost = np.nan_to_num(cost, nan=largest, posinf=largest, neginf=largest)
        rows, cols = linear_sum_assignment(cost)
        indices.append((rows.astype(np.int64), cols.astype(np.int64)))
    return indices
