"""DETR's set-prediction loss: Hungarian matching of queries to targets, then per-pair losses.

Follows Transformers' ``loss_for_object_detection`` (and the original DETR): each image's queries
are matched one-to-one to its target objects by :class:`HungarianMatcher`; matched queries are
supervised with their target's class and box (L1 + generalized IoU) and, for segmentation, mask
(sigmoid focal + dice); unmatched queries are supervised towards the "no object" class, whose
cross-entropy weight is ``eos_coefficient``. With ``auxiliary_loss`` every decoder layer but the
last gets the same losses (not the mask ones), keyed ``loss_ce_0``, ``loss_bbox_0``...

Targets are a list (one per image) of dicts with ``class_labels`` (N,), ``boxes`` (N, 4) as
normalised (center_x, center_y, width, height), and ``masks`` (N, H, W) for segmentation.
Shapes: B batch, Q queries, K classes + 1 (no object), M matched pairs.

Unlike Transformers, the number of boxes is not all-reduced across processes (no accelerate):
under data parallelism each process normalises by its own boxes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .matching import check_labels


def center_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    """(center_x, center_y, width, height) -> (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def _upcast(t: torch.Tensor) -> torch.Tensor:
    # Half-precision products of box sides overflow: compute areas in float32 at least.
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    boxes = _upcast(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise IoU and union areas of (N, 4) and (M, 4) corner boxes: two (N, M) tensors."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    top_left = torch.max(boxes1[:, None, :2], boxes2[:, :2])  # (N, M, 2)
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area1[:, None] + area2 - inter
    return inter / union, union


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Generalized IoU (https://giou.stanford.edu/) of (N, 4) and (M, 4) corner boxes: (N, M)."""
    for name, boxes in (("boxes1", boxes1), ("boxes2", boxes2)):
        if not (boxes[:, 2:] >= boxes[:, :2]).all():
            raise ValueError(f"{name} must be (x0, y0, x1, y1) corner boxes with x1 >= x0 and y1 >= y0, got {boxes}.")
    iou, union = box_iou(boxes1, boxes2)
    top_left = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    bottom_right = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    enclosing = (bottom_right - top_left).clamp(min=0).prod(-1)
    return iou - (enclosing - union) / enclosing


def dice_loss(inputs: torch.Tensor, targets: torch.Tensor, num_boxes: float) -> torch.Tensor:
    """1 - Dice coefficient of sigmoid(inputs) and targets, (M, P) each; summed over masks / num_boxes."""
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * (inputs * targets).sum(1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_boxes


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, num_boxes: float, alpha: float = 0.25, gamma: float = 2) -> torch.Tensor:
    """RetinaNet's focal loss (https://arxiv.org/abs/1708.02002), mean over pixels, summed over masks / num_boxes."""
    prob = inputs.sigmoid()
    ce = nn.functional.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(1).sum() / num_boxes


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to targets minimising class, L1 box and GIoU costs.

    The cost of query q for target t is ``bbox_cost * |b_q - b_t|_1 - class_cost * p_q(c_t)
    - giou_cost * GIoU(b_q, b_t)``; NaN/inf costs are replaced by the largest float so a
    diverged prediction is matched last instead of crashing scipy.
    """

    def __init__(self, class_cost: float = 1, bbox_cost: float = 1, giou_cost: float = 1) -> None:
        super().__init__()
        if class_cost == 0 and bbox_cost == 0 and giou_cost == 0:
            raise ValueError("The matcher's class_cost, bbox_cost and giou_cost are all 0; at least one must be non-zero.")
        self.class_cost, self.bbox_cost, self.giou_cost = class_cost, bbox_cost, giou_cost

    @torch.no_grad()
    def forward(self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image, (query indices, target indices), each of length min(Q, number of targets)."""
        try:
            from scipy.optimize import linear_sum_assignment
        except ImportError as exc:
            raise ImportError("DETR's loss needs scipy for the Hungarian matching: pip install scipy") from exc

        batch_size, num_queries = outputs["logits"].shape[:2]
        out_prob = outputs["logits"].flatten(0, 1).softmax(-1)  # (B*Q, K)
        out_bbox = outputs["pred_boxes"].flatten(0, 1)  # (B*Q, 4)
        target_ids = torch.cat([t["class_labels"] for t in targets])
        target_bbox = torch.cat([t["boxes"] for t in targets])  # (T, 4), all images

        class_cost = -out_prob[:, target_ids]
        bbox_cost = torch.cdist(out_bbox, target_bbox, p=1)
        giou_cost = -generalized_box_iou(center_to_corners(out_bbox), center_to_corners(target_bbox))
        cost = self.bbox_cost * bbox_cost + self.class_cost * class_cost + self.giou_cost * giou_cost
        largest = torch.finfo(cost.dtype).max
        cost = torch.nan_to_num(cost, nan=largest, posinf=largest, neginf=largest)
        cost = cost.view(batch_size, num_queries, -1).cpu()  # (B, Q, T)

        sizes = [len(t["boxes"]) for t in targets]
        indices = [linear_sum_assignment(c[i]) for i, c in enumerate(cost.split(sizes, -1))]
        return [(torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)) for i, j in indices]


class DetrLoss(nn.Module):
    """The set criterion: matches, then sums the requested losses (``labels``, ``boxes``, ``cardinality``, ``masks``)."""

    def __init__(self, matcher: HungarianMatcher, num_classes: int, eos_coef: float, losses: list[str]) -> None:
        super().__init__()
        self.matcher = matcher
        self.num_classes = num_classes
        self.losses = losses
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef  # the "no object" class, index num_classes
        self.register_buffer("empty_weight", empty_weight, persistent=False)

    @staticmethod
    def _query_index(indices: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        return batch, torch.cat([src for src, _ in indices])

    def loss_labels(self, outputs, targets, indices, num_boxes) -> dict[str, torch.Tensor]:
        logits = outputs["logits"]  # (B, Q, K)
        batch, query = self._query_index(indices)
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        target_classes[batch, query] = torch.cat([t["class_labels"][j] for t, (_, j) in zip(targets, indices)]).to(logits.device)
        return {"loss_ce": nn.functional.cross_entropy(logits.transpose(1, 2), target_classes, self.empty_weight.to(logits.dtype))}

    @torch.no_grad()
    def loss_cardinality(self, outputs, targets, indices, num_boxes) -> dict[str, torch.Tensor]:
        """|number of queries not predicting "no object" - number of targets|: for logging, no gradient."""
        logits = outputs["logits"]
        target_lengths = torch.as_tensor([len(t["class_labels"]) for t in targets], device=logits.device)
        predicted = (logits.argmax(-1) != logits.shape[-1] - 1).sum(1)
        return {"cardinality_error": nn.functional.l1_loss(predicted.float(), target_lengths.float())}

    def loss_boxes(self, outputs, targets, indices, num_boxes) -> dict[str, torch.Tensor]:
        source = outputs["pred_boxes"][self._query_index(indices)]  # (M, 4)
        target = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)], dim=0).to(source)
        loss_bbox = nn.functional.l1_loss(source, target, reduction="none")
        loss_giou = 1 - torch.diag(generalized_box_iou(center_to_corners(source), center_to_corners(target)))
        return {"loss_bbox": loss_bbox.sum() / num_boxes, "loss_giou": loss_giou.sum() / num_boxes}

    def loss_masks(self, outputs, targets, indices, num_boxes) -> dict[str, torch.Tensor]:
        """Predicted masks are upsampled (bilinear) to the targets' padded size, then focal + dice."""
        source = outputs["pred_masks"][self._query_index(indices)]  # (M, h, w)
        masks = [t["masks"] for t in targets]
        height, width = max(m.shape[-2] for m in masks), max(m.shape[-1] for m in masks)
        # Every image's masks zero-padded at the bottom/right to the batch's largest size.
        target = torch.cat(
            [nn.functional.pad(m, (0, width - m.shape[-1], 0, height - m.shape[-2]))[j] for m, (_, j) in zip(masks, indices)]
        ).to(source)
        source = nn.functional.interpolate(source[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        source, target = source.flatten(1), target.flatten(1)
        return {"loss_mask": sigmoid_focal_loss(source, target, num_boxes), "loss_dice": dice_loss(source, target, num_boxes)}

    def get_loss(self, loss: str, outputs, targets, indices, num_boxes) -> dict[str, torch.Tensor]:
        functions = {"labels": self.loss_labels, "cardinality": self.loss_cardinality, "boxes": self.loss_boxes, "masks": self.loss_masks}
        if loss not in functions:
            raise ValueError(f"Unknown DETR loss {loss!r}; expected one of {sorted(functions)}.")
        return functions[loss](outputs, targets, indices, num_boxes)

    def forward(self, outputs: dict[str, Any], targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        main = {k: v for k, v in outputs.items() if k != "auxiliary_outputs"}
        indices = self.matcher(main, targets)
        num_boxes = max(float(sum(len(t["class_labels"]) for t in targets)), 1.0)
        losses: dict[str, torch.Tensor] = {}
        for loss in self.losses:
            losses.update(self.get_loss(loss, main, targets, indices, num_boxes))
        for i, auxiliary in enumerate(outputs.get("auxiliary_outputs") or []):
            indices = self.matcher(auxiliary, targets)
            for loss in self.losses:
                if loss == "masks":  # the mask head runs on the last layer only
                    continue
                losses.update({f"{k}_{i}": v for k, v in self.get_loss(loss, auxiliary, targets, indices, num_boxes).items()})
        return losses


def detr_loss(
    config: Any,
    logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    labels: list[dict[str, torch.Tensor]],
    pred_masks: torch.Tensor | None = None,
    outputs_class: torch.Tensor | None = None,
    outputs_coord: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[dict[str, torch.Tensor]] | None]:
    """Total loss, the dict of every term, and the auxiliary outputs (one dict per decoder layer but the last).

    ``outputs_class`` / ``outputs_coord`` are (L, B, Q, K) / (L, B, Q, 4) per-layer predictions,
    needed when ``config.auxiliary_loss``. The total weighs ``loss_ce`` by 1, ``loss_bbox``,
    ``loss_giou``, ``loss_mask``, ``loss_dice`` by their ``*_loss_coefficient`` (auxiliary terms
    alike); ``cardinality_error`` is reported but not added.
    """
    with_masks = pred_masks is not None
    check_labels(labels, logits.shape[0], with_masks)
    matcher = HungarianMatcher(class_cost=config.class_cost, bbox_cost=config.bbox_cost, giou_cost=config.giou_cost)
    losses = ["labels", "boxes", "cardinality"] + (["masks"] if with_masks else [])
    criterion = DetrLoss(matcher, num_classes=config.num_labels, eos_coef=config.eos_coefficient, losses=losses).to(logits.device)

    outputs: dict[str, Any] = {"logits": logits, "pred_boxes": pred_boxes}
    if with_masks:
        outputs["pred_masks"] = pred_masks
    auxiliary_outputs = None
    if config.auxiliary_loss:
        if outputs_class is None or outputs_coord is None:
            raise ValueError("config.auxiliary_loss is set: pass the per-layer outputs_class and outputs_coord.")
        auxiliary_outputs = [{"logits": c, "pred_boxes": b} for c, b in zip(outputs_class[:-1], outputs_coord[:-1])]
        outputs["auxiliary_outputs"] = auxiliary_outputs
    loss_dict = criterion(outputs, labels)

    weight_dict = {"loss_ce": 1, "loss_bbox": config.bbox_loss_coefficient, "loss_giou": config.giou_loss_coefficient}
    if with_masks:
        weight_dict.update(loss_mask=config.mask_loss_coefficient, loss_dice=config.dice_loss_coefficient)
    if config.auxiliary_loss:
        weight_dict.update({f"{k}_{i}": v for i in range(config.decoder_layers - 1) for k, v in list(weight_dict.items())})
    loss = sum(loss_dict[k] * weight_dict[k] for k in loss_dict if k in weight_dict)
    return loss, loss_dict, auxiliary_outputs
