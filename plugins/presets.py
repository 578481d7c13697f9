"""The built-in presets: ``smoke``, ``default``, ``paper`` and ``sample4geo``.

- ``smoke``: finishes in well under a minute on 2 CPU cores (tests, CI).
- ``default``: a newcomer's first run, about 3 minutes on 2 CPU cores, R@1 about 300x chance.
- ``paper``: the thesis' section 4.2 hyperparameters (VGG16, MoCov2's SGD
  schedule, Adam fine-tuning, 4096-d SAFA embeddings) with each dataset's own
  image sizes (``auto``: CVACT 112x616 and 256x256, VIGOR 224x448 and 224x224).
- ``sample4geo``: Sample4Geo's recipe [0] at CPU size (see ``SAMPLE4GEO``).

- [0] Deuser, Habel, Oswald. "Sample4Geo: Hard negative sampling for
  cross-view geo-localisation", ICCV 2023.
"""

from __future__ import annotations

from cvbench.contract.hookspecs import hookimpl

COMMON = {
    "dataset": "synthetic",
    "head": "safa",
    "loss": ["soft_triplet"],
    "pretrainer": "none",
}

SMOKE = {
    **COMMON,
    "backbone": "resnet10t",
    "backbone_stage": 2,
    "ground_size": (32, 128),
    "aerial_size": (64, 64),
    "dim": "auto",
    "epochs": 1,
    "batch_size": 32,
    "lr": 1e-3,
    "pretrain_epochs": 1,
    "pretrain_batch_size": 32,
    "pretrain_lr": 0.03,
    "max_train_pairs": 128,
    "max_val_queries": 128,
    "max_pretrain_images": 128,
}

# ResNet-18 tapped at stride 8 (its second stage): on 32x128 panoramas and
# 64x64 tiles the last stage leaves 1x4 and 2x2 maps, too coarse for SAFA;
# measured on the synthetic cross-area split, stage 2 at lr 1e-3 reached R@1
# 42.8 where the last stage reached 2.3 (lr 3e-4) and 9.7 (lr 1e-3).
#
# The budget is a newcomer's first run (issue 20: at most 3 minutes on a
# 2-core CPU without AVX-512, R@1 at least 300x chance): 6 fine-tuning
# epochs, evaluated before the first and after the last, after one pre-training epoch on the
# training tiles (not the evaluation's). Measured under AVX2 emulation on
# 2 cores (docs/performance.md): seed 0 reaches R@1 31.4 in under 3
# minutes, seeds 1 and 2 29.3 and 34.1; 7 epochs (R@1 38.2) took 3 min 13 s,
# 10 epochs after 6 pre-training epochs 7 minutes (R@1 42); 5 epochs left
# R@1 at 24, and a cosine schedule, batch 32 or 128 all did worse at 6. The
# studies (cvbench/bench/grids/*_synthetic.toml) set their own, longer budget.
DEFAULT = {
    **COMMON,
    "backbone": "resnet18",
    "backbone_stage": 2,
    "ground_size": (32, 128),
    "aerial_size": (64, 64),
    "dim": "auto",
    "epochs": 6,
    "batch_size": 64,
    "lr": 1e-3,
    "pretrain_epochs": 1,
    "pretrain_batch_size": 64,
    "pretrain_lr": 0.03,
    "pretrain_data": "train",
    "eval_every": 6,
}

PAPER = {
    **COMMON,
    "backbone": "vgg16",
    "ground_size": "auto",
    "aerial_size": "auto",
    "dim": 4096,
    "epochs": 100,
    "batch_size": 96,
    "lr": 1e-4,
    "weight_decay": 1e-4,
    "pretrain_epochs": 200,
    "pretrain_batch_size": 128,
    "pretrain_lr": 0.015,
    "pretrain_weight_decay": 1e-4,
    "pretrain_milestones": (120, 160),
    "base_init": "imagenet",
    "eval_every": 5,
}

# Sample4Geo [0]: one ConvNeXt for both views, average-pooled (GeM at a fixed
# p = 1, no projection), symmetric InfoNCE with label smoothing 0.1 and a
# learnable temperature (init 0.07), flips (p 0.5) and quarter turns (3 of 4
# draws turn: the paper's prob_rotate 0.75) synchronised across the views,
# GPS neighbours in the first epoch and mined hard negatives after, AdamW
# (torch's weight decay 0.01) at lr 1e-3 with one warm-up epoch and a cosine
# decay, gradients clipped at norm 100. Where the paper differs (its VIGOR
# run): convnext_base.fb_in22k_ft_in1k_384 from ImageNet weights (here
# convnext_atto from random weights, as nothing can be downloaded for the
# synthetic world), 384x768 panoramas and 384x384 tiles (here 32x128 and
# 64x64), 40 epochs of batch 128 (here 10 of 64), 64 neighbours within 128
# of a pair's sorted GPS list for the first batches (here 8 within 500 m, and
# 8 of a pool of 32 hardest tiles after). Stage 2 (stride 16) of ConvNeXt
# keeps 2x8 and 4x4 maps at these sizes; the last stage would leave 1x4 and 2x2.
SAMPLE4GEO = {
    **COMMON,
    "backbone": "convnext_atto",
    "backbone_stage": 2,
    "shared_backbone": True,
    "ground_size": (32, 128),
    "aerial_size": (64, 64),
    "head": "gem",
    "head_options": {"p": 1.0, "learn_p": False, "project": False},
    "dim": "auto",
    "loss": ["infonce"],
    "loss_options": {"infonce": {"label_smoothing": 0.1, "temperature": 0.07, "learnable_temperature": True}},
    "finetune_aug": "geo-sync",
    "finetune_aug_options": {"flip_p": 0.5, "rotate": True},
    "sampler": "hard_negatives",
    "sampler_options": {"first_epoch": "gps_neighbours", "count": 8, "pool": 32, "random_share": 0.5},
    "optimizer": "adamw",
    "weight_decay": 0.01,
    "schedule": "cosine",
    "warmup_epochs": 1.0,
    "lr": 1e-3,
    "grad_clip": 100.0,
    "epochs": 10,
    "batch_size": 64,
    "pretrain_epochs": 6,
    "pretrain_batch_size": 64,
    "pretrain_lr": 0.03,
}


@hookimpl
def register_presets(register):
    register("smoke", SMOKE, summary="under a minute on 2 CPU cores; for tests and CI")
    register("default", DEFAULT, summary="about 3 minutes on 2 CPU cores, R@1 300x chance")
    register("paper", PAPER, summary="thesis section 4.2 settings with the dataset's own image sizes")
    register("sample4geo", SAMPLE4GEO, summary="Sample4Geo's recipe at CPU size: shared ConvNeXt, InfoNCE, "
                                               "hard negatives, AdamW + cosine")
