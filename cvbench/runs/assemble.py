"""A run's network and its settled spec: presets applied, options and plugin names checked, branches built.

Everything here fails before compute: a bad option, an unknown plugin, a
head that does not fit the backbone. :func:`build_model` initialises each
branch as the thesis' Table 3.1 asks; :func:`load_run_model` rebuilds a
finished run's network from its checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..contract.conform import static_image_sizes
from ..contract.dataset import ground_view_of
from ..contract.registry import create, get_registry
from ..errors import SpecError
from ..nn.backbone import FeatureExtractor, create_backbone
from ..nn.model import Branch, TwoBranchNet
from ..spec import (
    AUTO_SIZE,
    BRANCHES,
    NO_AUGMENTATION,
    NO_PRETRAINER,
    RunSpec,
    branch_init,
    parse_size,
    resolve,
    validate,
)
from ..spec.plugin_options import type_plugin_options
from ..training.checkpoint import load_weights
from .folder import MODEL_CHECKPOINT, RunFolder, check_starts, start_checkpoint
from .subsets import open_dataset


def resolve_spec(spec: RunSpec) -> RunSpec:
    """Apply the preset, validate every option and check every plugin name, before any work."""
    resolved = type_plugin_options(resolve(spec, create("preset", spec.preset)))  # p=3 as the head's p: float
    registry = get_registry()
    dataset = registry.get("dataset", resolved.dataset)
    if spec.ground_size is None and ground_view_of(dataset.factory) == "image" and resolved.ground_size != AUTO_SIZE:
        resolved.ground_size = resolved.aerial_size  # a preset's panorama size does not fit photos: square, as tiles
    if AUTO_SIZE in (resolved.ground_size, resolved.aerial_size):
        resolved = _dataset_sizes(resolved)
    validate(resolved)
    if resolved.dim == AUTO_SIZE:
        resolved.dim = natural_dim(resolved)
    if resolved.eval_dataset is not None:
        registry.get("dataset", resolved.eval_dataset)
    _check_ground_view(resolved)
    check_starts(resolved)
    registry.get("head", resolved.head)
    for name, _ in resolved.loss:
        registry.get("loss", name)
    if resolved.pretrainer != NO_PRETRAINER:
        registry.get("pretrainer", resolved.pretrainer)
    if resolved.finetune_aug != NO_AUGMENTATION:
        registry.get("augmentation", resolved.finetune_aug)
    for name in resolved.metrics:
        registry.get("metric", name)
    return resolved


def _check_ground_view(spec: RunSpec) -> None:
    """``--fov`` and ``--orientation`` cut panoramas: refused for a dataset whose ground images are photos."""
    if spec.field_of_view().is_identity:
        return
    for name in dict.fromkeys(filter(None, (spec.dataset, spec.eval_dataset))):
        view = ground_view_of(get_registry().get("dataset", name).factory)
        if view != "panorama":
            raise SpecError(f"--fov and --orientation cut 360-degree panoramas, but the ground images of dataset "
                            f"{name!r} are {view}s: leave both at their defaults (360, known)")


def _dataset_sizes(spec: RunSpec) -> RunSpec:
    """Replace ``auto`` image sizes by the dataset's own (``image_sizes()``, thesis section 4.2).

    A static ``image_sizes`` is read without opening the dataset, so a spec
    resolves (``cvbench bench --dry-run``) on a machine without the data.
    """
    sizes_of = static_image_sizes(get_registry().get("dataset", spec.dataset).factory)
    sizes = sizes_of() if sizes_of is not None else open_dataset(spec)[0].image_sizes()
    if not sizes:
        raise SpecError(f"dataset {spec.dataset!r} suggests no image sizes, so --ground-size/--aerial-size "
                        "auto cannot be settled: give both as HxW")
    values = spec.to_dict()
    for branch in BRANCHES:
        if values[f"{branch}_size"] == AUTO_SIZE:
            values[f"{branch}_size"] = parse_size(sizes[branch])
    return RunSpec.from_dict(values)


SIZE_OPTIONS = {"ground": "--ground-size", "aerial": "--aerial-size"}


def _backbone(spec: RunSpec, branch: str) -> FeatureExtractor:
    """One branch's backbone, initialised as Table 3.1 asks (``branch`` names its start options)."""
    init = branch_init(spec, branch)
    start = spec.pretrain_from if init == "pretrained" else init
    backbone = create_backbone(spec.backbone, "imagenet" if start == "imagenet" else "random",
                               spec.pretrained_weights, spec.backbone_stage, spec.backbone_options)
    checkpoint = start_checkpoint(start, branch, "pretrain_from" if init == "pretrained" else f"{branch}_init")
    if checkpoint is not None:
        load_weights(backbone, checkpoint, what=f"{spec.backbone} backbone of the {branch} branch")
    return backbone.freeze() if spec.freeze_backbone else backbone


def natural_dim(spec: RunSpec) -> int:
    """``--dim auto``: the head's natural size for the backbone (its factory's ``natural_dim``), else an error."""
    factory = get_registry().get("head", spec.head).factory
    natural = getattr(factory, "natural_dim", None)
    if not callable(natural):
        raise SpecError(f"--dim auto: head {spec.head!r} declares no natural size; give --dim as a number")
    with torch.device("meta"):  # shapes only: no weights are drawn or allocated (a grid resolves many specs)
        backbone = create_backbone(spec.backbone, "random", None, spec.backbone_stage, spec.backbone_options)
    hw = backbone.feature_hw(spec.input_size("aerial"), SIZE_OPTIONS["aerial"])
    return int(natural(backbone.out_channels, hw, **spec.head_options))


def build_model(spec: RunSpec, checkpoints: dict[str, Path] | None = None) -> TwoBranchNet:
    """The two-branch network with each branch initialised as Table 3.1 asks.

    A branch to be pre-trained starts from ``pretrain_from``, the others from
    their init; a start that names a checkpoint (file, or folder with one per
    branch) is loaded strictly; ``random`` / ``imagenet`` as named. With
    ``--shared-backbone`` one branch serves both views (Sample4Geo), and its
    head must take both views' feature maps.
    """
    branches = {}
    for branch in (("aerial",) if spec.shared_backbone else BRANCHES):
        backbone = _backbone(spec, branch)
        feature_hw = backbone.feature_hw(spec.input_size(branch), SIZE_OPTIONS[branch])
        head = create("head", spec.head, backbone.out_channels, feature_hw, spec.dim, **spec.head_options)
        branches[branch] = Branch(backbone, head)
    if spec.shared_backbone:
        branches["ground"] = branches["aerial"]
        _check_shared_head(spec, branches["aerial"])
    return TwoBranchNet(branches["ground"], branches["aerial"], spec.head, int(spec.dim))


def _check_shared_head(spec: RunSpec, branch: Branch) -> None:
    """A shared head meets both views' feature maps: one built for a single map size is refused, naming both."""
    sizes = {view: branch.backbone.feature_hw(spec.input_size(view), SIZE_OPTIONS[view]) for view in BRANCHES}
    if sizes["ground"] == sizes["aerial"]:
        return
    probe = torch.zeros(1, branch.backbone.out_channels, *sizes["ground"])
    try:
        with torch.no_grad():
            branch.head.eval()(probe)
    except (RuntimeError, ValueError) as exc:
        raise SpecError(f"--shared-backbone: head {spec.head!r} was built for the aerial feature map "
                        f"{sizes['aerial'][0]}x{sizes['aerial'][1]} but the ground views give "
                        f"{sizes['ground'][0]}x{sizes['ground'][1]} ({str(exc).splitlines()[0][:120]}); use a head "
                        "that pools any size (gem, netvlad, salad, siamese_vgg) or equal feature map sizes") from None
    finally:
        branch.head.train()


def load_run_model(run_dir: str | Path, checkpoint: str = MODEL_CHECKPOINT) -> tuple[RunSpec, TwoBranchNet]:
    """A run's spec and its two-branch model with the weights of ``checkpoints/<checkpoint>``, on the CPU."""
    folder = RunFolder(run_dir)
    spec = folder.checkpoint_spec(checkpoint)
    # the checkpoint replaces every weight: build without loading anything else
    model = build_model(dataclasses.replace(spec, ground_init="random", aerial_init="random"))
    load_weights(model, folder.checkpoint(checkpoint), what=f"two-branch model of {folder.name}")
    return spec, model
