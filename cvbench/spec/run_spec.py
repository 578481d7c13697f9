"""The run spec: every option of a run, with the same names in the CLI, in
benchmark TOML rows and in ``result.json``.

Each option is declared once, as a :class:`RunSpec` field made by
:func:`option`: its type, default, help text, help group and CLI shape
(:mod:`cvbench.spec.parse`) live together in the field, and the ``run``,
``pretrain`` and ``train`` commands generate their options from the fields
(:mod:`cvbench.cli.spec_options`).

A spec is resolved in three layers: the fields the user set explicitly, then
the chosen preset (registered by a plugin package), then the fallbacks below.
Validation of everything that can be checked without compute happens in
:func:`cvbench.spec.validate.validate`, so a bad option fails before any work starts. Values from
TOML or JSON are type-checked by :mod:`cvbench.spec.typecheck`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import SpecError
from .parse import (
    AUTO_SIZE,
    COUNT,
    EPOCH_LIST,
    FLAG,
    LOSSES,
    NAMED_OPTIONS,
    NAMES,
    OPTIONS,
    SIZE,
    VALUE,
    parse_loss,
    parse_options,
    parse_size,
    parse_value,
)
from .parse import show as _show
from .typecheck import typed

if TYPE_CHECKING:  # both import torch; the spec is read without it (`cvbench run --help`)
    from ..contract.metric import Conventions
    from ..data.field_of_view import FieldOfView

__all__ = ["AUTO_SIZE", "BAD_IMAGES", "BRANCHES", "CHANNELS_LAST", "FALLBACKS", "FULL_CIRCLE", "GROUPS", "HIT_RATES",
           "LABELS", "MACHINE", "NO_AUGMENTATION", "NO_PRETRAINER", "ONE_PERCENT", "ON_DEVICE", "OPTIMIZERS",
           "OPTIONAL", "ORIENTATIONS", "PRETRAIN_BRANCHES", "PRETRAIN_DATA", "RunSpec", "SCHEDULES", "STARTS", "TIES",
           "branch_init", "closest", "expand", "flag", "from_record", "hints", "is_file", "option", "parse_loss",
           "parse_options", "parse_size", "parse_value", "pretrains", "resolve"]

BRANCHES = ("ground", "aerial")
PRETRAIN_BRANCHES = ("aerial", "ground", "both")
PRETRAIN_DATA = ("train", "val", "all")
STARTS = ("random", "imagenet")
NO_PRETRAINER = "none"
NO_AUGMENTATION = "none"
BAD_IMAGES = ("fail", "skip")
CHANNELS_LAST = ("auto", "on", "off")
ON_DEVICE = ("auto", "on", "off")  # --gpu-decode, --gpu-augment: auto is on CUDA only
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "milestones", "cosine")
# The values of the retrieval conventions and the query view, as cvbench.contract.metric and
# cvbench.data.field_of_view define them (tests/test_spec.py holds them equal): those modules import torch, and
# the spec declares the CLI's choices without it.
TIES = ("random", "optimistic")
ONE_PERCENT = ("floor+1", "floor")
HIT_RATES = ("paper", "code")
ORIENTATIONS = ("known", "random")
FULL_CIRCLE = 360.0

# The groups of options, in the order `cvbench run --help` shows them as panels (their titles).
RUN, DATA, MODEL, PRETRAINING, FINETUNING, EVALUATION, MACHINE = GROUPS = (
    "Run", "Data", "Model", "Pre-training", "Fine-tuning", "Evaluation", "Machine and output")


def option(group: str, help: str, default: Any = None, *, shape: str = VALUE, cli: str | None = None,
           factory: Callable[[], Any] | None = None, example: str | None = None, expect: str | None = None,
           choices: tuple[str, ...] | None = None) -> Any:
    """A :class:`RunSpec` field declared with everything the CLI and the checks need, in its metadata.

    ``group`` is its help panel (one of :data:`GROUPS`), ``help`` its help
    text, ``shape`` how it is typed on the command line (a
    :mod:`cvbench.spec.parse` shape), ``cli`` the CLI parameter when it is not
    the field name (``data_option`` for ``data_options``: ``--data-option``),
    ``example`` the ``NAME.KEY=VALUE`` example of a named-options error and
    ``expect`` what a TOML list should be, for the type error, and
    ``choices`` the only values it takes (the CLI lists them in ``--help`` and
    in the error for any other).
    """
    metadata = {"group": group, "help": help, "shape": shape, "cli": cli or None, "example": example,
                "expect": expect, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class RunSpec:
    """All options of one run. ``None`` means "from the preset"."""

    preset: str = option(RUN, "Preset of defaults: see `cvbench plugins` (smoke, default, paper, ...).", "default")
    name: str | None = option(RUN, "A label for the run: in its folder's name, its record, the leaderboard and the "
                              "trackers; never part of what the run computes.")
    tags: tuple[str, ...] | None = option(RUN, "A tag labelling the run, repeatable (leaderboard --where tag=TAG); "
                                          "never part of what the run computes.", (), shape=NAMES, cli="tag",
                                          expect="a list of tags such as [\"baseline\", \"ablation\"]")
    dataset: str | None = option(DATA, "Dataset plugin; the preset's by default (see `cvbench plugins`).")
    data_root: str | None = option(DATA, "Folder of a dataset on disk.")
    data_options: dict[str, Any] = option(DATA, "Dataset option KEY=VALUE (repeatable).", shape=OPTIONS,
                                          cli="data_option", factory=dict)
    split: str | None = option(DATA, "Protocol of the dataset (e.g. cross_area); its first by default.")
    bad_images: str | None = option(DATA, "A corrupt image: fail (stop, naming it; the default) or skip (check every "
                                    "image first, leave out its pairs, report them).", choices=BAD_IMAGES)
    max_train_pairs: int | None = option(DATA, "Use at most this many training pairs.")
    train_fraction: float | None = option(DATA, "Fine-tune on this share (0-1] of the training pairs, a seeded nested "
                                          "subset: the label-efficiency curve's x (default 1).")
    max_val_queries: int | None = option(DATA, "Evaluate at most this many queries (all references).")
    max_pretrain_images: int | None = option(DATA, "Pre-train on at most this many images of each subset "
                                             "--pretrain-data names (default all; `all` sees train's and val's).")
    backbone: str | None = option(MODEL, "Any timm model name (vgg16, resnet50, convnext_tiny, ...).")
    backbone_stage: int | None = option(MODEL, "Feature stage the head aggregates (timm out_indices; -1 = last).")
    ground_size: tuple[int, int] | str | None = option(DATA, "Ground image size HxW, e.g. 224x448, or auto (the "
                                                       "dataset's own, thesis section 4.2).", shape=SIZE)
    aerial_size: tuple[int, int] | str | None = option(DATA, "Aerial image size HxW, e.g. 224x224, or auto (the "
                                                       "dataset's own).", shape=SIZE)
    polar: bool | None = option(DATA, "SAFA's polar transform of aerial tiles (centre-aligned datasets only); "
                                "--aerial-size is then the polar image size.", shape=FLAG)
    fov: float | None = option(DATA, "Field of view of a ground query in degrees, (0, 360]: the panorama is cut to it "
                               "(360 = the whole panorama, the default; the literature uses 180, 90 and 70).")
    orientation: str | None = option(DATA, "known (queries face north, the default) or random (evaluation turns query "
                                     "i to a heading seeded by the run seed and i; training draws one per load).",
                                     choices=ORIENTATIONS)
    head: str | None = option(MODEL, "Aggregation head plugin (see `cvbench plugins`).")
    head_options: dict[str, Any] = option(MODEL, "Head option KEY=VALUE (repeatable).", shape=OPTIONS,
                                          cli="head_option", factory=dict)
    dim: int | str | None = option(MODEL, "Embedding dimension, or auto: the head's natural size for the backbone "
                                   "(SAFA 8 x channels, GeM the channels, NetVLAD clusters x channels, ...).",
                                   shape=COUNT)
    backbone_options: dict[str, Any] = option(MODEL, "Option KEY=VALUE passed to timm.create_model (repeatable), "
                                              "e.g. dynamic_img_size=true.", shape=OPTIONS, cli="backbone_option",
                                              factory=dict)
    shared_backbone: bool | None = option(MODEL, "One backbone and head for both views, as Sample4Geo (the thesis' "
                                          "branches are separate, the default).", shape=FLAG)
    freeze_backbone: bool | None = option(MODEL, "Train the heads only; the backbones keep their start weights "
                                          "(linear-adapter and zero-shot baselines).", shape=FLAG)
    loss: list[tuple[str, float]] | None = option(FINETUNING, "Loss NAME[:WEIGHT], repeatable; the objective is the "
                                                  "weighted sum.", shape=LOSSES)
    loss_options: dict[str, dict[str, Any]] = option(FINETUNING, "Loss option NAME.KEY=VALUE (repeatable).",
                                                     shape=NAMED_OPTIONS, cli="loss_option", factory=dict,
                                                     example="LOSS.gamma=10")
    pretrainer: str | None = option(PRETRAINING, "Self-supervised pretrainer plugin, or none.")
    pretrain_branches: str | None = option(PRETRAINING, "Which branch to pre-train: aerial, ground or both.",
                                            choices=PRETRAIN_BRANCHES)
    pretrain_data: str | None = option(PRETRAINING, "Pre-train on the train, val or all images of the split.",
                                        choices=PRETRAIN_DATA)
    pretrain_from: str | None = option(PRETRAINING, "Pre-training starts from random or imagenet weights.")
    pretrain_epochs: int | None = option(PRETRAINING, "Pre-training epochs.")
    pretrain_batch_size: int | None = option(PRETRAINING, "Pre-training batch size.")
    pretrain_lr: float | None = option(PRETRAINING, "Pre-training SGD learning rate.")
    pretrain_weight_decay: float | None = option(PRETRAINING, "Pre-training SGD weight decay.")
    pretrain_milestones: tuple[int, ...] | None = option(PRETRAINING, "Epochs where the pre-training lr drops x0.1, "
                                                         "e.g. 120,160.", shape=EPOCH_LIST,
                                                         expect="a list of epochs such as [120, 160]")
    pretrain_options: dict[str, Any] = option(PRETRAINING, "Pretrainer option KEY=VALUE (repeatable).", shape=OPTIONS,
                                              cli="pretrain_option", factory=dict)
    base_init: str | None = option(MODEL, "Initialisation of branches not pre-trained: random or imagenet.")
    ground_init: str | None = option(MODEL, "Ground branch: auto, random, imagenet, pretrained or a .safetensors "
                                     "backbone.")
    aerial_init: str | None = option(MODEL, "Aerial branch: auto, random, imagenet, pretrained or a .safetensors "
                                     "backbone.")
    pretrained_weights: str | None = option(MODEL, "File with the backbone's pretrained weights (.safetensors or "
                                            ".pth), for --base-init imagenet on a machine without timm's cache.")
    epochs: int | None = option(FINETUNING, "Fine-tuning epochs.")
    batch_size: int | None = option(FINETUNING, "Fine-tuning batch size.")
    lr: float | None = option(FINETUNING, "Fine-tuning peak learning rate.")
    weight_decay: float | None = option(FINETUNING, "Fine-tuning weight decay.")
    optimizer: str | None = option(FINETUNING, "Fine-tuning optimiser: adam (the thesis', the default) or adamw "
                                   "(decoupled weight decay, Sample4Geo's).", choices=OPTIMIZERS)
    schedule: str | None = option(FINETUNING, "Fine-tuning learning-rate schedule: constant (the default), "
                                  "milestones (x0.1 at --milestones) or cosine (after --warmup-epochs of linear "
                                  "warm-up).", choices=SCHEDULES)
    milestones: tuple[int, ...] | None = option(FINETUNING, "Epochs where the fine-tuning lr drops x0.1 (schedule "
                                                "milestones), e.g. 20,40.", shape=EPOCH_LIST,
                                                expect="a list of epochs such as [20, 40]")
    warmup_epochs: float | None = option(FINETUNING, "Epochs of linear warm-up before the cosine decay (may be a "
                                         "fraction, e.g. 0.5).")
    sampler: str | None = option(FINETUNING, "Batch sampler plugin: which pairs share a batch (conflict_free, "
                                 "gps_neighbours, hard_negatives; see `cvbench plugins`).")
    sampler_options: dict[str, Any] = option(FINETUNING, "Sampler option KEY=VALUE (repeatable).", shape=OPTIONS,
                                             cli="sampler_option", factory=dict)
    finetune_aug: str | None = option(FINETUNING, "Fine-tuning pair augmentation plugin, or none.")
    finetune_aug_options: dict[str, Any] = option(FINETUNING, "Augmentation option KEY=VALUE (repeatable).",
                                                  shape=OPTIONS, cli="finetune_aug_option", factory=dict)
    grad_clip: float | None = option(FINETUNING, "Clip the gradient norm to this value.")
    eval_every: int | None = option(EVALUATION, "Evaluate every N fine-tuning epochs (and always before the first "
                                    "and after the last); a skipped evaluation changes no training number.")
    eval_batch_size: int | None = option(EVALUATION, "Batch size when embedding for evaluation.")
    metrics: tuple[str, ...] | None = option(EVALUATION, "Metric plugin NAME evaluation computes, repeatable "
                                             "(default: recall, ap, localisation, uniformity).", shape=NAMES,
                                             cli="metric",
                                             expect="a list of metric names such as [\"recall\", \"uniformity\"]")
    metric_options: dict[str, dict[str, Any]] = option(EVALUATION, "Metric option NAME.KEY=VALUE (repeatable).",
                                                       shape=NAMED_OPTIONS, cli="metric_option", factory=dict,
                                                       example="uniformity.t=2")
    eval_dataset: str | None = option(EVALUATION, "Evaluate on this dataset plugin instead of the training one "
                                      "(cross-dataset transfer, e.g. train cvusa, evaluate cvact).")
    eval_split: str | None = option(EVALUATION, "The protocol evaluation uses (of --eval-dataset, or of the training "
                                    "dataset); by default the training split, or the evaluation dataset's first.")
    eval_data_root: str | None = option(EVALUATION, "Folder of --eval-dataset on disk (default: --data-root when "
                                        "the dataset is the same).")
    eval_data_options: dict[str, Any] = option(EVALUATION, "Option KEY=VALUE of --eval-dataset (repeatable).",
                                               shape=OPTIONS, cli="eval_data_option", factory=dict)
    ties: str | None = option(EVALUATION, "A wrong reference tied with the best correct one: random (counts in "
                              "expectation, so a collapsed model scores chance; the default) or optimistic (ties go "
                              "to the truth, as the reference scripts).", choices=TIES)
    one_percent: str | None = option(EVALUATION, "R@1%'s k: floor+1 = floor(M/100)+1 (CVM-Net, VIGOR; the default) or "
                                     "floor = floor(M/100) (Sample4Geo, TransGeo).", choices=ONE_PERCENT)
    hit_rate: str | None = option(EVALUATION, "VIGOR's hit rate: paper (the top-1 is the positive or a semi-positive; "
                                  "the default) or code (nothing else outranks the positive, as the authors' script).",
                                  choices=HIT_RATES)
    seed: int = option(RUN, "Seed of everything; same seed, same device, same numbers.", 0)
    device: str = option(MACHINE, "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.", "auto")
    workers: int = option(MACHINE, "DataLoader worker processes.", 0)
    channels_last: str = option(MACHINE, "NHWC memory format for the convolutions: auto (on CUDA only), on or off.",
                                "auto", choices=CHANNELS_LAST)
    compile: bool | None = option(MACHINE, "torch.compile the networks (minutes of compilation, then faster steps "
                                  "on GPU).", shape=FLAG)
    gpu_decode: str | None = option(MACHINE, "Decode JPEG datasets on the device, a batch at a time (nvJPEG on "
                                    "CUDA): auto (on CUDA only), on or off.", "auto", choices=ON_DEVICE)
    gpu_augment: str | None = option(MACHINE, "Make the pre-training views on the device, a batch at a time with a "
                                     "draw per image: auto (on CUDA only), on or off.", "auto", choices=ON_DEVICE)
    loggers: tuple[str, ...] | None = option(MACHINE, "Experiment tracker NAME the run also logs to, repeatable: "
                                             "tensorboard, mlflow (docs/trackers.md); never changes the numbers.",
                                             shape=NAMES, cli="logger",
                                             expect="a list of logger names such as [\"tensorboard\", \"mlflow\"]")
    logger_options: dict[str, dict[str, Any]] = option(MACHINE, "Logger option NAME.KEY=VALUE (repeatable).",
                                                       shape=NAMED_OPTIONS, cli="logger_option", factory=dict,
                                                       example="mlflow.tracking_uri=http://localhost:5000")

    def conventions(self) -> Conventions:
        """The retrieval conventions this run's numbers follow (a resolved spec)."""
        from ..contract.metric import Conventions

        return Conventions(self.ties, self.one_percent, self.hit_rate)

    def field_of_view(self) -> FieldOfView:
        """What a ground query sees of its panorama (a spec from before ``--fov`` sees all of it, facing north)."""
        from ..data.field_of_view import FieldOfView

        return FieldOfView(FULL_CIRCLE if self.fov is None else self.fov, self.orientation or "known", self.seed)

    def input_size(self, branch: str) -> tuple[int, int]:
        """The ``(H, W)`` a branch's network receives: the aerial size, or the ground query's field of view."""
        if branch == "aerial":
            return int(self.aerial_size[0]), int(self.aerial_size[1])
        height, width = self.ground_size
        return int(height), self.field_of_view().width(int(width))

    def protocol(self) -> dict[str, Any]:
        """The conventions and query view a record names beside its numbers (``result.json``'s ``conventions``)."""
        return {**self.conventions().as_dict(), "fov": self.field_of_view().degrees,
                "orientation": self.field_of_view().orientation}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunSpec":
        """Build a spec from a dict, naming any key that is not an option (old names read as their new ones)."""
        values = {RENAMED.get(name, name): value for name, value in values.items()}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields), key=str)
        if unknown:
            close = closest(str(unknown[0]), list(fields))
            hint = f" (did you mean {close!r}?)" if close else ""
            raise SpecError(f"unknown option(s) {', '.join(map(_show, unknown))}{hint}; valid options are: "
                            f"{', '.join(sorted(fields))}")
        types = hints()
        return cls(**{name: typed(name, value, types[name], fields[name].metadata["shape"],
                                  fields[name].metadata["expect"]) for name, value in values.items()})


def from_record(values: dict[str, Any]) -> RunSpec:
    """A resolved spec as a run folder stored it; options added to cvbench after it was written take their
    :data:`FALLBACKS` (a run recorded before ``--ties`` existed is evaluated again under today's default)."""
    spec = RunSpec.from_dict(values)
    for name, value in FALLBACKS.items():
        if name not in values and getattr(spec, name) is None:
            setattr(spec, name, value)
    return spec


def flag(name: str) -> str:
    """The command-line flag of the :class:`RunSpec` field ``name`` (``head_options`` is ``--head-option``)."""
    field = {item.name: item for item in dataclasses.fields(RunSpec)}[name]
    return "--" + (field.metadata["cli"] or name).replace("_", "-")


@functools.cache
def hints() -> dict[str, Any]:
    """Each :class:`RunSpec` field's type, resolved from its annotation (``int | None``, ``dict[str, Any]``, ...)."""
    return typing.get_type_hints(RunSpec)


RENAMED = {"imagenet_weights": "pretrained_weights"}
"""Options renamed since records were first written: a stored spec or TOML row with the old name still reads."""

FALLBACKS: dict[str, Any] = {
    "polar": False,
    "shared_backbone": False,
    "freeze_backbone": False,
    "compile": False,
    "gpu_decode": "auto",
    "gpu_augment": "auto",
    "loggers": (),
    "tags": (),
    "backbone_stage": -1,
    "pretrainer": NO_PRETRAINER,
    "pretrain_branches": "aerial",
    "pretrain_data": "all",
    "bad_images": "fail",
    "pretrain_weight_decay": 1e-4,
    "pretrain_milestones": (),
    "base_init": "random",
    "ground_init": "auto",
    "aerial_init": "auto",
    "weight_decay": 1e-4,
    "finetune_aug": NO_AUGMENTATION,
    "eval_every": 1,
    "eval_batch_size": 256,
    "optimizer": "adam",
    "schedule": "constant",
    "milestones": (),
    "warmup_epochs": 0.0,
    "sampler": "conflict_free",
    "train_fraction": 1.0,
    "metrics": ("recall", "ap", "localisation", "uniformity"),
    "fov": FULL_CIRCLE,
    "orientation": "known",
    "ties": "random",
    "one_percent": "floor+1",
    "hit_rate": "paper",
}


# Options that belong to one plugin: a preset's apply only while the run keeps
# the preset's plugin (``--head safa`` under a preset of ``gem`` drops its
# ``p``), and the user's add to or override them.
SCOPED_OPTIONS = {"data_options": "dataset", "head_options": "head", "backbone_options": "backbone",
                  "pretrain_options": "pretrainer", "sampler_options": "sampler",
                  "finetune_aug_options": "finetune_aug", "eval_data_options": "eval_dataset"}
# Options keyed by plugin name: a preset's keys for a plugin the run does not use are dropped.
KEYED_OPTIONS = {"loss_options": "loss", "metric_options": "metrics", "logger_options": "loggers"}


def resolve(spec: RunSpec, preset_values: dict[str, Any]) -> RunSpec:
    """Fill every ``None`` field from the preset, then from :data:`FALLBACKS`; merge plugin options.

    A preset's plugin options join the user's only for the plugins the run
    keeps (:data:`SCOPED_OPTIONS`, :data:`KEYED_OPTIONS`); the user's win.
    """
    names = {f.name for f in dataclasses.fields(RunSpec)}
    unknown = sorted(set(preset_values) - names)
    if unknown:
        raise SpecError(f"preset {spec.preset!r} sets unknown option(s): {', '.join(unknown)}")
    values = dataclasses.asdict(spec)
    for name, value in values.items():
        if value is None:
            if name in preset_values:
                values[name] = preset_values[name]
            elif name in FALLBACKS:
                values[name] = FALLBACKS[name]
    chosen = RunSpec.from_dict(values)
    for name, plugin in SCOPED_OPTIONS.items():
        if getattr(chosen, plugin) == preset_values.get(plugin):
            values[name] = {**preset_values.get(name, {}), **values[name]}
    for name, plugin in KEYED_OPTIONS.items():
        used = _plugin_names(getattr(chosen, plugin))
        preset = {key: options for key, options in preset_values.get(name, {}).items() if key in used}
        values[name] = {key: {**preset.get(key, {}), **values[name].get(key, {})} for key in {*preset, *values[name]}}
    resolved = RunSpec.from_dict(values)
    if resolved.pretrain_from is None:
        resolved.pretrain_from = resolved.base_init
    missing = [f.name for f in dataclasses.fields(RunSpec)
               if getattr(resolved, f.name) is None and f.name not in OPTIONAL]
    if missing:
        raise SpecError(f"preset {spec.preset!r} leaves these options unset: {', '.join(missing)}")
    return resolved


def _plugin_names(choice: Any) -> set[str]:
    """The plugin names of ``--loss`` (``[(name, weight), ...]``) or ``--metric`` (``(name, ...)``)."""
    return {item[0] if isinstance(item, (tuple, list)) else item for item in choice or ()}


OPTIONAL = {"data_root", "split", "max_train_pairs", "max_val_queries", "max_pretrain_images", "pretrained_weights",
            "grad_clip", "eval_dataset", "eval_split", "eval_data_root", "name"}

LABELS = ("name", "tags")
"""Options that label a run without changing what it computes (``--name``, ``--tag``): a reader's handles, left out
of the setting a run is compared by (leaderboard ``--group-by all``, a grid's finished-run match) and of the fields
that define a checkpoint's weights."""


def expand(text: str, option: str) -> Path:
    """``text`` as a path with ``~`` expanded; SpecError naming the option when ``~user`` names no user."""
    from ..data.layout import expand_user

    return expand_user(text, SpecError, f"--{option.replace('_', '-')} {_show(text)}")


def is_file(path: Path) -> bool:
    """``path.is_file()``, False where the system cannot even look the name up (too long, say)."""
    from ..data.layout import path_is

    return path_is(Path.is_file, path)


def pretrains(spec: RunSpec, branch: str) -> bool:
    """Whether this run pre-trains the given branch."""
    return spec.pretrainer != NO_PRETRAINER and spec.pretrain_branches in (branch, "both")


def branch_init(spec: RunSpec, branch: str) -> str:
    """The effective initialisation of a branch: ``auto`` becomes ``pretrained`` or the base init."""
    init = getattr(spec, f"{branch}_init")
    if init == "auto":
        return "pretrained" if pretrains(spec, branch) else spec.base_init
    return init


def closest(name: str, names: list[str]) -> str | None:
    """The valid name a mistyped ``name`` most likely meant (the same but for case, else the nearest), or None."""
    same = [candidate for candidate in names if candidate.lower() == name.lower()]
    close = same or difflib.get_close_matches(name, names, n=1)
    return close[0] if close else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
