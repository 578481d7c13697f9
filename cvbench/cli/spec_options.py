"""The run options shared by ``run``, ``pretrain`` and ``train``, declared once.

Each option's CLI name is its :class:`cvbench.spec.RunSpec` field with dashes,
so the CLI, benchmark TOML rows and ``result.json`` use the same names.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import typer

from ..errors import SpecError
from ..spec import RunSpec, parse_loss, parse_options, parse_size

P = inspect.Parameter

# (field, annotation, typer option): None defaults mean "from the preset".
OPTIONS: list[tuple[str, Any, Any]] = [
    ("preset", str, typer.Option("default", help="Preset of defaults: see `cvbench plugins` (smoke, default, paper, ...).")),
    ("dataset", Optional[str], typer.Option(None, help="Dataset plugin; the preset's by default (see `cvbench plugins`).")),
    ("data_root", Optional[str], typer.Option(None, help="Folder of a dataset on disk.")),
    ("data_option", Optional[list[str]], typer.Option(None, help="Dataset option KEY=VALUE (repeatable).")),
    ("split", Optional[str], typer.Option(None, help="Protocol of the dataset (e.g. cross_area); its first by default.")),
    ("bad_images", Optional[str], typer.Option(None, help="A corrupt image: fail (stop, naming it; the default) or skip (check every image first, leave out its pairs, report them).")),
    ("max_train_pairs", Optional[int], typer.Option(None, help="Use at most this many training pairs.")),
    ("train_fraction", Optional[float], typer.Option(None, help="Fine-tune on this share (0-1] of the training pairs, a seeded nested subset: the label-efficiency curve's x (default 1).")),
    ("max_val_queries", Optional[int], typer.Option(None, help="Evaluate at most this many queries (all references).")),
    ("max_pretrain_images", Optional[int], typer.Option(None, help="Pre-train on at most this many images of each subset --pretrain-data names (default all; `all` sees train's and val's).")),
    ("backbone", Optional[str], typer.Option(None, help="Any timm model name (vgg16, resnet50, convnext_tiny, ...).")),
    ("backbone_stage", Optional[int], typer.Option(None, help="Feature stage the head aggregates (timm out_indices; -1 = last).")),
    ("ground_size", Optional[str], typer.Option(None, help="Ground image size HxW, e.g. 224x448, or auto (the dataset's own, thesis section 4.2).")),
    ("aerial_size", Optional[str], typer.Option(None, help="Aerial image size HxW, e.g. 224x224, or auto (the dataset's own).")),
    ("polar", bool, typer.Option(False, "--polar", help="SAFA's polar transform of aerial tiles (centre-aligned datasets only); --aerial-size is then the polar image size.")),
    ("head", Optional[str], typer.Option(None, help="Aggregation head plugin (see `cvbench plugins`).")),
    ("head_option", Optional[list[str]], typer.Option(None, help="Head option KEY=VALUE (repeatable).")),
    ("dim", Optional[int], typer.Option(None, help="Embedding dimension.")),
    ("loss", Optional[list[str]], typer.Option(None, help="Loss NAME[:WEIGHT], repeatable; the objective is the weighted sum.")),
    ("loss_option", Optional[list[str]], typer.Option(None, help="Loss option NAME.KEY=VALUE (repeatable).")),
    ("pretrainer", Optional[str], typer.Option(None, help="Self-supervised pretrainer plugin, or none.")),
    ("pretrain_branches", Optional[str], typer.Option(None, help="Which branch to pre-train: aerial, ground or both.")),
    ("pretrain_data", Optional[str], typer.Option(None, help="Pre-train on the train, val or all images of the split.")),
    ("pretrain_from", Optional[str], typer.Option(None, help="Pre-training starts from random or imagenet weights.")),
    ("pretrain_epochs", Optional[int], typer.Option(None, help="Pre-training epochs.")),
    ("pretrain_batch_size", Optional[int], typer.Option(None, help="Pre-training batch size.")),
    ("pretrain_lr", Optional[float], typer.Option(None, help="Pre-training SGD learning rate.")),
    ("pretrain_milestones", Optional[str], typer.Option(None, help="Epochs where the pre-training lr drops x0.1, e.g. 120,160.")),
    ("pretrain_option", Optional[list[str]], typer.Option(None, help="Pretrainer option KEY=VALUE (repeatable).")),
    ("base_init", Optional[str], typer.Option(None, help="Initialisation of branches not pre-trained: random or imagenet.")),
    ("ground_init", Optional[str], typer.Option(None, help="Ground branch: auto, random, imagenet, pretrained or a .safetensors backbone.")),
    ("aerial_init", Optional[str], typer.Option(None, help="Aerial branch: auto, random, imagenet, pretrained or a .safetensors backbone.")),
    ("imagenet_weights", Optional[str], typer.Option(None, help="File with the backbone's ImageNet weights (offline machines).")),
    ("epochs", Optional[int], typer.Option(None, help="Fine-tuning epochs.")),
    ("batch_size", Optional[int], typer.Option(None, help="Fine-tuning batch size.")),
    ("lr", Optional[float], typer.Option(None, help="Fine-tuning Adam learning rate.")),
    ("weight_decay", Optional[float], typer.Option(None, help="Fine-tuning weight decay.")),
    ("finetune_aug", Optional[str], typer.Option(None, help="Fine-tuning pair augmentation plugin, or none.")),
    ("finetune_aug_option", Optional[list[str]], typer.Option(None, help="Augmentation option KEY=VALUE (repeatable).")),
    ("grad_clip", Optional[float], typer.Option(None, help="Clip the gradient norm to this value.")),
    ("eval_every", Optional[int], typer.Option(None, help="Evaluate every N fine-tuning epochs.")),
    ("eval_batch_size", Optional[int], typer.Option(None, help="Batch size when embedding for evaluation.")),
    ("seed", int, typer.Option(0, help="Seed of everything; same seed, same device, same numbers.")),
    ("device", str, typer.Option("auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")),
    ("workers", int, typer.Option(0, help="DataLoader worker processes.")),
    ("channels_last", str, typer.Option("auto", help="NHWC memory format for the convolutions: auto (on CUDA only), on or off.")),
    ("compile", bool, typer.Option(False, "--compile", help="torch.compile the networks (minutes of compilation, then faster steps on GPU).")),
]


def spec_from_cli(values: dict[str, Any]) -> RunSpec:
    """Turn the parsed CLI values into a :class:`RunSpec` (unset options stay ``None``)."""
    values = dict(values)
    fields: dict[str, Any] = {}
    fields["data_options"] = parse_options(values.pop("data_option") or [], "--data-option")
    fields["head_options"] = parse_options(values.pop("head_option") or [], "--head-option")
    fields["pretrain_options"] = parse_options(values.pop("pretrain_option") or [], "--pretrain-option")
    fields["finetune_aug_options"] = parse_options(values.pop("finetune_aug_option") or [], "--finetune-aug-option")
    loss_options: dict[str, dict[str, Any]] = {}
    for item in values.pop("loss_option") or []:
        name, dot, rest = item.partition(".")
        if not dot:
            raise SpecError(f"--loss-option {item!r}: expected NAME.KEY=VALUE, e.g. LOSS.gamma=10")
        loss_options.setdefault(name, {}).update(parse_options([rest], "--loss-option"))
    fields["loss_options"] = loss_options
    losses = values.pop("loss")
    fields["loss"] = [parse_loss(text) for text in losses] if losses else None
    for name in ("ground_size", "aerial_size"):
        text = values.pop(name)
        fields[name] = parse_size(text) if text else None
    milestones = values.pop("pretrain_milestones")
    if milestones is not None:
        try:
            fields["pretrain_milestones"] = tuple(int(x) for x in milestones.split(",") if x.strip())
        except ValueError:
            raise SpecError(f"--pretrain-milestones {milestones!r}: expected epochs such as 120,160") from None
    fields.update(values)
    return RunSpec.from_dict(fields)


def with_spec_options(extra: list[P] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every run option (plus ``extra`` parameters) through its signature."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        params = [P(name, P.KEYWORD_ONLY, default=option, annotation=annotation) for name, annotation, option in OPTIONS]
        func.__signature__ = inspect.Signature(params + list(extra or []))  # type: ignore[attr-defined]
        return func

    return decorate


def split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run-option values, the command's other values)."""
    names = {name for name, _, _ in OPTIONS}
    return {k: v for k, v in values.items() if k in names}, {k: v for k, v in values.items() if k not in names}
