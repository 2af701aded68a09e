"""Hyper-parameters of the writer-embedding stage, with the ``demo`` and ``paper`` presets.

Every field is a plain scalar (str / int / float / bool / None) so the Dagster layer can mirror
the dataclass as a launchpad ``Config`` and pass the values straight back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from wrmil_core import presets
from wrmil_core.embedding.pretrained import packaged
from wrmil_core.errors import WrmilInputError

HEADS = ("arcface", "subcenter", "cosface")
RESIZE_MODES = ("pad", "squash")
DEVICES = ("auto", "cpu", "cuda")
SAMPLERS = ("random", "pk")
POOLINGS = ("avg", "style")
METHODS = ("arcface", "classical", "frozen")  # fit.py fits each


@dataclass(frozen=True)
class EmbeddingConfig:
    """Everything that determines how the embedding network is built, trained and evaluated.

    Method
        method          "arcface": train the network below (``train.py``); "classical": the
                        training-free ink-shape embedding (``classical.py``); "frozen": the pretrained
                        backbone's style features projected by a PCA (``frozen_pca_dim``) and a
                        shrinkage LDA (``frozen_lda_dim``, ``frozen_shrinkage``) of the training
                        writers, no training loop (``frozen.py``)
        content_prior   k > 0: the training words' per-transcription offsets (shrunk by n / (n + k))
                        are removed from every word whose text is known (``content.py``); 0: off
    Model
        backbone        any timm model name (built with ``num_classes=0``)
        weights         ImageNet weights shipped in an installed package, e.g.
                        "efficientnet_lite0@imagenet" (``pretrained.py``; for its own backbone only)
        weights_file    local pretrained weights for the backbone (.safetensors or .pth); with neither,
                        the network starts from random weights; nothing is ever downloaded
        pooling         "avg": timm's global average pool of the last stage; "style": the mean and
                        standard deviation of each feature stage but the first (``model.StylePool``)
        freeze_bn       the backbone's BatchNorm layers keep their (pretrained) statistics in training
        backbone_lr_scale  the backbone's learning rate as a fraction of the head's (a pretrained
                        start wants < 1: the head learns from scratch, the backbone only adapts)
        in_chans        1 = grayscale stem (timm sums a pretrained RGB stem over its channels),
                        3 = grayscale repeated to RGB
        emb_dim, hidden_dim, dropout   the original head: Linear->hidden, BN, ReLU, Dropout,
                        Linear->emb_dim, BN
    Input
        img_h, img_w    network input size
        resize_mode     "pad" keeps the aspect ratio and pads with the background; "squash" is
                        the original plain resize to img_h x img_w
        augment         the original RandomAffine on training images
        shortcut_augment  on top of it (training images only): elastic distortion, ink thickness
                        (grey-level dilation/erosion), blur, contrast, brightness, gamma and noise,
                        so ink tone, paper and scanner cannot tell writers apart (``augment.py``)
    Margin head
        head            "arcface" | "subcenter" | "cosface"; s = scale, m = margin (radians for
                        the ArcFace variants, cosine units for CosFace); k_subcenters for subcenter
    Optimiser (AdamW + OneCycleLR)
        lr              starting lr of the one-cycle schedule; max_lr its peak; warmup_frac its rise
        weight_decay, grad_clip (max global grad norm; 0 disables), epochs, batch_size (per process)
        patience        epochs without a val-AUC gain of more than min_delta before stopping
    Fusion
        classical_weight  w > 0: after training, the classical LDA embedding is fitted on the train
                        words and saved beside the network; the model's vectors are both side by side,
                        their cosine (1 - w) x the network's + w x the classical one (``fusion.py``)
    Data
        max_train_images_per_epoch  random subset drawn afresh each epoch (None = all)
        sampler         "random": a seeded shuffle (``ShardedEpochSampler``); "pk": writer-balanced
                        batches of P writers x ``words_per_writer`` words (``WriterBatchSampler``)
        image_budget    training images to show in all (epochs x images per epoch), or None to
                        use ``epochs`` as given; with a budget, :meth:`for_data` scales the epochs
                        to the data set (at most ``epochs``), so training time stays the same for
                        any data set size
        max_val_images  writer-stratified subset of val words used for the per-epoch metrics
        val_pairs, val_queries  caps on verification pairs and retrieval queries
        num_workers     DataLoader worker processes; seed; device "auto" | "cpu" | "cuda"
        cpu_threads     torch threads on CPU; 0 = the cores left after the workers (avoids
                        oversubscription, which slows a small CPU run several-fold)
        channels_last   network and batches in channels-last memory format (faster convolutions
                        with bf16 on CUDA; benchmarks/train_throughput.py); False keeps the default
                        layout and today's numbers
    """

    method: str = "arcface"
    frozen_pca_dim: int = 256
    frozen_lda_dim: int = 64
    frozen_shrinkage: float = 0.5
    content_prior: float = 0.0
    backbone: str = "resnet18d"
    weights: str | None = None
    weights_file: str | None = None
    in_chans: int = 1
    pooling: str = "avg"
    freeze_bn: bool = False
    backbone_lr_scale: float = 1.0
    emb_dim: int = 128
    hidden_dim: int = 512
    dropout: float = 0.2
    img_h: int = 64
    img_w: int = 256
    resize_mode: str = "pad"
    augment: bool = True
    head: str = "arcface"
    s: float = 30.0
    m: float = 0.5
    k_subcenters: int = 3
    classical_weight: float = 0.0
    lr: float = 1e-5
    max_lr: float = 1e-4
    weight_decay: float = 5e-4
    warmup_frac: float = 0.1
    epochs: int = 30
    batch_size: int = 64
    patience: int = 5
    min_delta: float = 1e-4
    grad_clip: float = 5.0
    max_train_images_per_epoch: int | None = None
    sampler: str = "random"
    words_per_writer: int = 4
    shortcut_augment: bool = False
    image_budget: int | None = None
    max_val_images: int | None = 5000
    val_pairs: int = 20000
    val_queries: int = 2000
    num_workers: int = 2
    cpu_threads: int = 0
    seed: int = 0
    device: str = "auto"
    channels_last: bool = False

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> WrmilInputError:
            return WrmilInputError(f"EmbeddingConfig.{field}={getattr(self, field)!r}: {why}")

        if self.head not in HEADS:
            raise bad("head", f"choose one of {HEADS}")
        if self.resize_mode not in RESIZE_MODES:
            raise bad("resize_mode", f"choose one of {RESIZE_MODES}")
        if self.method not in METHODS:
            raise bad("method", f"choose one of {METHODS}")
        if self.frozen_pca_dim < 2 or self.frozen_lda_dim < 1 or not 0 <= self.frozen_shrinkage <= 1:
            raise WrmilInputError("EmbeddingConfig: frozen_pca_dim >= 2, frozen_lda_dim >= 1 and frozen_shrinkage "
                                  "in [0, 1] please")
        if self.content_prior < 0:
            raise bad("content_prior", "must be >= 0 (0: no content offsets)")
        if self.pooling not in POOLINGS:
            raise bad("pooling", f"choose one of {POOLINGS}")
        if self.weights is not None:
            if self.weights_file is not None:
                raise bad("weights", "give packaged weights or a weights_file, not both")
            fits = packaged(self.weights).backbone
            if fits != self.backbone:
                raise bad("weights", f"these are {fits!r} weights; set backbone={fits!r} or pick weights for "
                                     f"{self.backbone!r}")
        if not 0 < self.backbone_lr_scale <= 1:
            raise bad("backbone_lr_scale", "must be in (0, 1]")
        if self.sampler not in SAMPLERS:
            raise bad("sampler", f"choose one of {SAMPLERS}")
        if self.sampler == "pk" and not 1 <= self.words_per_writer <= self.batch_size // 2:
            raise bad("words_per_writer", f"P x K batches need 1 <= K <= batch_size/2 = {self.batch_size // 2}")
        if self.image_budget is not None and self.image_budget < self.batch_size:
            raise bad("image_budget", f"must be None or at least one batch ({self.batch_size} images)")
        if self.device not in DEVICES:
            raise bad("device", f"choose one of {DEVICES}")
        if self.in_chans not in (1, 3):
            raise bad("in_chans", "use 1 (grayscale stem) or 3 (gray repeated to RGB)")
        for f in ("img_h", "img_w", "emb_dim", "hidden_dim", "epochs", "batch_size", "k_subcenters",
                  "val_pairs", "val_queries"):
            if getattr(self, f) < 1:
                raise bad(f, "must be >= 1")
        if self.batch_size < 2:
            raise bad("batch_size", "BatchNorm needs at least 2 images per batch")
        for f in ("lr", "max_lr", "s"):
            if not getattr(self, f) > 0:
                raise bad(f, "must be > 0")
        if self.lr > self.max_lr:
            raise bad("lr", f"the one-cycle start lr must not exceed max_lr={self.max_lr}")
        if not 0 < self.warmup_frac < 1:
            raise bad("warmup_frac", "must be in (0, 1)")
        if not 0 <= self.classical_weight < 1:
            raise bad("classical_weight", "must be in [0, 1): the classical part's share of the fused cosine")
        if not 0 <= self.dropout < 1:
            raise bad("dropout", "must be in [0, 1)")
        if self.m < 0 or self.weight_decay < 0 or self.grad_clip < 0 or self.patience < 0 or self.num_workers < 0 or self.cpu_threads < 0:
            raise WrmilInputError("EmbeddingConfig: m, weight_decay, grad_clip, patience, num_workers and cpu_threads must be >= 0")
        for f in ("max_train_images_per_epoch", "max_val_images"):
            v = getattr(self, f)
            if v is not None and v < 2:
                raise bad(f, "must be None (all) or >= 2")

    def for_data(self, n_train_images: int) -> EmbeddingConfig:
        """This config with ``epochs`` scaled to a training set of ``n_train_images`` images.

        Without ``image_budget`` it is returned unchanged. With one, an epoch draws
        ``min(n_train_images, max_train_images_per_epoch)`` images and the epochs are
        ``image_budget / images per epoch`` rounded, between 1 and ``epochs``.
        """
        if self.image_budget is None or n_train_images < 1:
            return self
        per_epoch = min(n_train_images, self.max_train_images_per_epoch or n_train_images)
        epochs = int(min(self.epochs, max(1, round(self.image_budget / per_epoch))))
        return dataclasses.replace(self, epochs=epochs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingConfig:
        """Build from a dict, ignoring keys that are not fields (e.g. ``model_id`` in a saved config)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# The research pipeline's settings (DESIGN.md stage 1): ViT-B/16, 224x224 squash, ArcFace s=30 m=0.5
# (the final run used m=0.4), AdamW lr 1e-5 wd 5e-4, OneCycle to 1e-4 with 10 % warm-up, batch 64 per
# GPU, 30 epochs with early stopping. Pretrained ImageNet weights come from ``weights_file``.
PAPER = EmbeddingConfig(
    backbone="vit_base_patch16_224", in_chans=3, img_h=224, img_w=224, resize_mode="squash",
    head="arcface", s=30.0, m=0.5, lr=1e-5, max_lr=1e-4, weight_decay=5e-4, warmup_frac=0.1,
    epochs=30, batch_size=64, patience=5, grad_clip=5.0, max_val_images=None, num_workers=4,
)

# CPU-friendly: a small timm CNN at 64x256 (aspect kept), one DataLoader worker beside one torch
# thread (2 cores), 6,000 images per epoch. Tuned on the synthetic DEMO set (24 train / 8 val writers,
# one seed each, so differences of ~0.02 AUC are noise): mobilenetv3_small_075 trained faster than
# mobilenetv3_small_100 / lcnet_050/075 for the same val AUC; a soft margin worked best with 24 writers
# (val AUC s=16: m=0.3 0.76, m=0.2 0.82, m=0.1 0.83 but unsteady); max_lr 2e-3 gave a steadier curve
# than 4e-3 / 8e-3; weight decay 5e-2 and sub-center ArcFace did not help. Val AUC peaks within ~5
# epochs and then falls as the network memorises the 24 writers, hence few epochs and early stopping.
# Retuning for issue 11 (target val AUC >= 0.85), on today's generator: `benchmarks/embedding_demo.py
# [--set ...]` (synthetic demo set, seed 0, 24 train / 8 val writers, AUC on 2,000 val words, best epoch;
# one seed each; on the shared 2-core machine, wall time of the training with the load average at its
# start-end):   this preset                                   0.634 [0.560, 0.707]  602 s, load 1.2-7.7
#   sampler=pk, shortcut_augment=true (the cpu recipe)        0.592                1341 s, load 7.8-14
#   img 32x128, epochs=12 (patience 2: stopped after 6)       0.628 (epoch 4)       655 s, load 15-12
#   img 32x128, epochs=12, patience=0                         0.628 (epoch 4; 0.57 at epoch 12) 577 s, load 10-6
#   augment=false (no affine: slant kept)                     0.604                 490 s, load 5-5.5
#   dropout=0.5, weight_decay=0.05                            0.577                 245 s, load 3.9-3.5
#   the classical embedding (method: classical, 1,500 train / 1,000 val words)  0.669 [0.614, 0.733]
#   classical_weight=0.6 (the fused embedding of the cpu preset)  0.694 (network part 0.634), top-1 0.50;
#     left off here: extracting the features of all 15,120 words would push make demo past 10 minutes
# ([lo, hi]: 95% writer-bootstrap interval, model_quality.py.) The train loss keeps falling while the
# val AUC peaks by epoch ~4: with 24 writers the network memorises them whatever the schedule, and the
# capture-shortcut augmentation only slows it down. No candidate beat this preset, so it is unchanged;
# 0.85 on single words of unseen synthetic writers needs another recipe (pretraining, more writers).
DEMO = EmbeddingConfig(
    backbone="mobilenetv3_small_075", in_chans=1, img_h=64, img_w=256, resize_mode="pad",
    head="arcface", s=16.0, m=0.2, lr=2e-4, max_lr=2e-3, weight_decay=5e-4, warmup_frac=0.15,
    epochs=5, batch_size=64, patience=2, grad_clip=5.0, max_train_images_per_epoch=6000,
    max_val_images=2000, val_pairs=20000, val_queries=1000, num_workers=1,
)

# The from-scratch recipe of issue 11 for a user's own handwriting on a CPU, kept as the starting point
# of CPU_NETWORK below. Writer-balanced P x K batches (16 writers x 4 words), the capture-shortcut
# augmentation, a soft ArcFace margin for few classes, an image budget of 80,000 training images
# (13.9 min per AHAWP fold on 2 cores) and no early stopping (the val AUC of P x K runs jumps at the end
# of the one-cycle annealing), fused with the classical LDA part (classical_weight 0.6). On AHAWP, 5
# writer folds pooled (82 writers): 0.819 AUC, EER 0.258; the network part alone 0.772.
_SCRATCH = EmbeddingConfig(
    backbone="mobilenetv3_small_100", in_chans=1, img_h=64, img_w=256, resize_mode="pad", augment=True,
    shortcut_augment=True, sampler="pk", words_per_writer=4, head="arcface", s=16.0, m=0.2, lr=2e-4,
    max_lr=2e-3, weight_decay=5e-4, warmup_frac=0.15, epochs=40, image_budget=80_000, batch_size=64, patience=0,
    grad_clip=5.0, max_train_images_per_epoch=None, max_val_images=1000, val_pairs=20000, val_queries=1000,
    num_workers=1, classical_weight=0.6,
)

# A user's own real handwriting on a CPU (2 cores, no GPU): the frozen-feature embedding (issue 19).
# ImageNet EfficientNet-Lite2 from its wheel, words at 96 x 384 (aspect kept), the mean and standard
# deviation of its four feature stages (style pooling), a PCA of 512 and a shrinkage-0.3 LDA of the
# training writers, fused with the classical LDA part at weight 0.3, and the transcriptions' content
# offsets removed where words have text. No training loop: fitting is one pass over the training words.
# Chosen on AHAWP, 5 writer folds pooled over 82 unseen writers (the figures of the single-word table in
# docs/cross-validation.md, features extracted once per backbone and input size, then PCA + LDA per fold):
#   frozen part alone, lite0 at 64 x 256, PCA 256, shrinkage 0.5 (issue 19's recipe)   0.798
#     lite0 at 96 x 384 0.811; PCA 384 and shrinkage 0.3 0.827; PCA 512 0.831; lite0 at 64 and 96
#     concatenated 0.838; signed square root of the features 0.785 (worse)
#   lite2 at 96 x 384, PCA 512, shrinkage 0.3                                          0.849 (PCA 768: 0.854)
#   fused with the classical LDA at weight 0.3 / 0.4                                   0.857 / 0.851
# A network fine-tuned from the same start on 2 cores sees about two epochs of AHAWP in 15 minutes;
# CPU_NETWORK is that recipe (not a preset name of its own: every stage shares the preset names; the
# cpu preset with ``method: arcface`` and the fields below gives it; docs/configuration.md: "The pretrained start").
CPU = dataclasses.replace(
    _SCRATCH, method="frozen", backbone="efficientnet_lite2", weights="efficientnet_lite2@imagenet",
    pooling="style", img_h=96, img_w=384, frozen_pca_dim=512, frozen_lda_dim=64, frozen_shrinkage=0.3,
    classical_weight=0.3, content_prior=10.0,
)

# Fine-tuning the pretrained start (method arcface), with what a pretrained start needs: style pooling
# of the middle stages (issue 19: the writer signal is in their texture statistics, and a naive
# last-stage fine-tune fell to 0.639 AUC), the backbone's BatchNorm statistics frozen (P x K batches of
# 16 writers would overwrite them), a backbone learning rate a tenth of the new head's, and the
# one-cycle warm-up. Grey input goes to the summed 1-channel stem (``model.py``).
CPU_NETWORK = dataclasses.replace(
    CPU, method="arcface", img_h=64, img_w=256, freeze_bn=True, backbone_lr_scale=0.1, lr=1e-4, max_lr=1e-3,
    image_budget=40_000, shortcut_augment=False,
)

# The same fine-tuning sized for one GPU (bf16 autocast on CUDA): EfficientNet-Lite2 at 128 x 512, P x K
# batches of 32 writers x 4 words, 8 loader processes and a budget of 1.5 million training images (at
# most 150 epochs). Not measured here (no GPU was lent); a starting point, like PAPER.
GPU = dataclasses.replace(
    CPU_NETWORK, img_h=128, img_w=512, batch_size=128, epochs=150, image_budget=1_500_000,
    max_val_images=5000, val_queries=2000, num_workers=8, shortcut_augment=True,
)

PRESETS: dict[str, EmbeddingConfig] = {"demo": DEMO, "paper": PAPER, "cpu": CPU, "gpu": GPU}


def preset(name: str, **overrides: Any) -> EmbeddingConfig:
    """A named preset with optional field overrides, e.g. ``preset("demo", epochs=3)``."""
    return presets.preset(PRESETS, name, **overrides)
