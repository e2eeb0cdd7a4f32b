"""SlotCon: contrastive learning of slots found by semantic grouping (dense, teacher-student)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torchvision.ops import roi_align

from ..distributed import gather
from ..ema import cosine_momentum, ema_update, make_teacher
from ..heads import mlp
from ..losses.grouping import batch_center, ema_center, grouping_loss, semantic_grouping, slot_contrastive
from ..views import Views
from .base import Method, MethodContext

MIN_MAP_PIXELS = 4      # a 2x2 map at least: two slots per view can exist (the cpu preset gives 4x4)


def dense_mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 3) -> nn.Sequential:
    """``mlp`` as 1x1 convolutions on (B, C, h, w) maps (the authors' ``DINOHead2d``)."""
    mods: list[nn.Module] = []
    dims = [in_dim] + [hidden] * (layers - 1)
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [nn.Conv2d(a, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
    mods.append(nn.Conv2d(dims[-1], out_dim, 1))
    return nn.Sequential(*mods)


def box_intersection(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 4) x0 y0 x1 y1 boxes -> their intersection (B, 4) and whether it is non-empty (B,)."""
    inter = torch.cat([torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])], 1)
    return inter, (inter[:, 2] > inter[:, 0]) & (inter[:, 3] > inter[:, 1])


def align_to_region(maps: torch.Tensor, crop: torch.Tensor, region: torch.Tensor, size: tuple[int, int],
                    flip: torch.Tensor | None = None) -> torch.Tensor:
    """Resample the part of each map that shows ``region`` onto a ``size`` grid (roi_align).

    maps: (B, C, h, w), the dense map of a view whose crop box is ``crop`` (B, 4) in source pixels;
    region: (B, 4) source-pixel boxes inside the crops (the views' intersection); flip: optional
    (B,) bool, views mirrored after cropping (un-mirrored first). Returns (B, C, *size): two
    views aligned to the same region are pixel-to-pixel comparable.
    """
    if flip is not None:
        maps = torch.where(flip.view(-1, 1, 1, 1).to(maps.device), maps.flip(-1), maps)
    h, w = maps.shape[-2:]
    scale = torch.stack([w / (crop[:, 2] - crop[:, 0]), h / (crop[:, 3] - crop[:, 1])], 1).repeat(1, 2)
    rois = (region - crop[:, :2].repeat(1, 2)) * scale
    idx = torch.arange(len(maps), device=maps.device, dtype=maps.dtype).unsqueeze(1)
    return roi_align(maps, torch.cat([idx, rois.to(maps)], 1), size, aligned=True)


def prototypes_owning_pixels(logits: torch.Tensor) -> torch.Tensor:
    """(B, K, h, w) assignment logits -> (B, K) bool: the prototype is the argmax of some pixel."""
    owned = torch.zeros(logits.shape[:2], device=logits.device)
    return owned.scatter_(1, logits.argmax(1).flatten(1), 1.0) > 0


def slot_counts(q_logits: torch.Tensor, k_logits: torch.Tensor) -> dict[str, float]:
    """What the slot loss has to work with, per view on average: ``slots``, the prototypes owning a
    pixel of the key view's map; ``matched``, those owning a pixel in both views (the positives of
    the slot InfoNCE; fewer than two in a whole batch and the slot loss is 0). (B, K, h, w) x 2."""
    q, k = prototypes_owning_pixels(q_logits), prototypes_owning_pixels(k_logits)
    return {"slots": k.sum(1).float().mean().item(), "matched": (q & k).sum(1).float().mean().item()}


class SlotCon(Method):
    """SlotCon of Wen et al., "Self-Supervised Visual Representation Learning with Semantic
    Grouping", NeurIPS 2022 (official code: github.com/CVMI-Lab/SlotCon).

    Student: backbone -> ``forward_features`` (B, C, h, w) -> 1x1-conv projector (B, D, h, w);
    K learnable prototypes (K, D). Teacher: an EMA copy of all three (cosine momentum from
    ``teacher_momentum``). Per view, pixel logits = cos(pixel, prototype) (B, K, h, w).

    * grouping loss: both views' logits are resampled (roi_align) onto their overlap (the
      intersection of ``Views.boxes``); at every aligned pixel, cross-entropy between the
      teacher's centred assignment (softmax((logit - center) / 0.07), DINO centring, momentum
      0.9) of one view and the student's (softmax(logit / 0.1)) of the other; pairs whose crops
      do not overlap are masked out.
    * slots (B, K, D): per prototype, the projected features averaged with the pixels' soft
      assignments (softmax over prototypes at 0.07, normalised over pixels). Slots whose
      prototype is the argmax of no pixel are dropped.
    * slot contrastive loss: InfoNCE (T = 0.2) between predictor(student slot) of one view and
      the teacher slots of the other, the same image and prototype being the positive.

    loss = w * grouping + (1 - w) * contrastive, each averaged over the two directions (the
    authors sum them: a factor 2). ``Views.boxes`` is required for cropped views (without it
    the two views are taken to show the same region); ``Views.flipped``, optionally a
    per-view (B,) bool of horizontal flips applied after cropping. Exports the teacher backbone
    (``exported = "momentum"``), as the paper evaluates the teacher.
    """

    @dataclass
    class Config:
        num_prototypes: int = 64        # K; paper 256 (COCO / ImageNet)
        dim_hidden: int = 1024          # projector / predictor hidden width; paper 4096
        dim_out: int = 256              # D, projection and prototype dimension; paper 256
        teacher_momentum: float = 0.99  # base of the cosine EMA schedule; paper 0.99
        teacher_temp: float = 0.07      # teacher assignments and slot pooling; paper 0.07
        student_temp: float = 0.1       # student assignments; paper 0.1
        center_momentum: float = 0.9    # DINO centring; paper 0.9
        group_loss_weight: float = 0.5  # w; paper 0.5
        slot_temp: float = 0.2          # slot InfoNCE temperature; paper 0.2

    exported = "momentum"
    momentum_attr = "teacher_backbone"

    def __init__(self, backbone: nn.Module, cfg: "SlotCon.Config", ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.projector = dense_mlp(backbone.num_features, cfg.dim_hidden, cfg.dim_out)
        self.prototypes = nn.Embedding(cfg.num_prototypes, cfg.dim_out)
        self.predictor = mlp(cfg.dim_out, cfg.dim_hidden, cfg.dim_out, layers=3)
        self.teacher_backbone = make_teacher(backbone)
        self.teacher_projector = make_teacher(self.projector)
        self.teacher_prototypes = make_teacher(self.prototypes)
        self.register_buffer("center", torch.zeros(1, cfg.num_prototypes))

    def group(self, x: torch.Tensor, teacher: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Views (B, 3, h, w) in [0, 1] -> slots (B, K, D) and pixel logits (B, K, h', w')."""
        bb, proj, protos = ((self.teacher_backbone, self.teacher_projector, self.teacher_prototypes) if teacher
                            else (self.backbone, self.projector, self.prototypes))
        maps = bb.forward_features(self.normalize(x))
        if maps.shape[-2] * maps.shape[-1] < MIN_MAP_PIXELS:
            raise ValueError(f"SlotCon groups the pixels of the backbone's dense map, which is "
                             f"{tuple(maps.shape[-2:])} on {tuple(x.shape[-2:])}-px views: at most one slot per "
                             "view and no slot loss; use larger views (--aug_cfg.out_size) or a backbone with "
                             "a finer last stage (the cpu preset's small stem gives 4x4 on 32 px)")
        return semantic_grouping(proj(maps), protos.weight, self.cfg.teacher_temp)

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, xs = self.cfg, views.views[:2]
        student = [self.group(x) for x in xs]
        with torch.no_grad():
            teacher = [self.group(x, teacher=True) for x in xs]
        boxes = [b.to(xs[0].device, torch.float32) for b in (views.boxes or [self._full_box(xs[0])] * 2)]
        region, valid = box_intersection(boxes[0], boxes[1])
        region = torch.where(valid.unsqueeze(1), region, boxes[0])  # any finite box; masked out below
        flips = views.flipped or [None, None]
        size = tuple(max(s) for s in zip(student[0][1].shape[-2:], student[1][1].shape[-2:]))
        align = lambda m, i: align_to_region(m, boxes[i], region, size, flips[i])  # noqa: E731
        rows = lambda m: m.permute(0, 2, 3, 1).flatten(0, 2)  # noqa: E731
        weight = valid.float().repeat_interleave(size[0] * size[1])
        group = sum(grouping_loss(rows(align(student[a][1], a)), rows(align(teacher[b][1], b)), self.center,
                                  cfg.student_temp, cfg.teacher_temp, weight) for a, b in ((0, 1), (1, 0))) / 2
        slot = sum(self._slot_loss(*student[a], *teacher[b]) for a, b in ((0, 1), (1, 0))) / 2
        self._update_center(torch.cat([rows(t[1]) for t in teacher]))
        loss = cfg.group_loss_weight * group + (1 - cfg.group_loss_weight) * slot
        return loss, {"loss": loss.item(), "group": float(group.detach()), "slot": float(slot.detach()),
                      **slot_counts(student[0][1], teacher[1][1]), "overlap": valid.float().mean().item()}

    def _slot_loss(self, q_slots: torch.Tensor, q_logits: torch.Tensor, k_slots: torch.Tensor,
                   k_logits: torch.Tensor) -> torch.Tensor:
        """InfoNCE of the student slots of one view against the teacher slots of the other."""
        q_mask, k_mask = prototypes_owning_pixels(q_logits), prototypes_owning_pixels(k_logits)
        pos = (q_mask & k_mask).flatten().nonzero().squeeze(1)
        # every process joins the collectives and runs the predictor, matched slots or not: a process
        # that skipped them would leave the others waiting (the gather; DDP's gradient reduction)
        keys, key_mask = gather(k_slots.flatten(0, 1)), gather(k_mask.flatten())
        if pos.numel() < 2:  # the predictor's BatchNorm needs two rows: a zero loss through it
            return self.predictor(q_slots.flatten(0, 1)[:2]).sum() * 0
        queries = self.predictor(q_slots.flatten(0, 1)[pos])
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        return slot_contrastive(queries, keys, pos + rank * k_mask.numel(), key_mask, self.cfg.slot_temp)

    @torch.no_grad()
    def _update_center(self, teacher_rows: torch.Tensor) -> None:
        batch = batch_center(teacher_rows)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch)
            batch /= dist.get_world_size()
        self.center.copy_(ema_center(self.center, batch, self.cfg.center_momentum))

    @staticmethod
    def _full_box(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return x.new_tensor([0.0, 0.0, w, h]).expand(len(x), 4)

    def after_step(self, progress: float) -> None:
        m = cosine_momentum(self.cfg.teacher_momentum, progress)
        ema_update(self.teacher_backbone, self.backbone, m)
        ema_update(self.teacher_projector, self.projector, m)
        ema_update(self.teacher_prototypes, self.prototypes, m)

    def backbone_for_export(self) -> nn.Module:
        return self.teacher_backbone
