"""Checks of a resolved spec that need no plugin and no compute: a bad option fails before any work starts.

Each check raises :class:`SpecError` naming the option as the command line
spells it (``--batch-size``) and what was expected. Plugin names, the
dataset's splits and the head's fit are checked where they are known
(:mod:`cvbench.runs.assemble`).
"""

from __future__ import annotations

import dataclasses
import math
import re

from ..errors import SpecError
from .parse import AUTO_SIZE
from .parse import show as _show
from .run_spec import (BAD_IMAGES, BRANCHES, CHANNELS_LAST, HIT_RATES, ON_DEVICE, ONE_PERCENT, OPTIMIZERS,
                       ORIENTATIONS, PRETRAIN_BRANCHES, PRETRAIN_DATA, SCHEDULES, TIES, RunSpec, expand, pretrains)

MAX_SEED = 2**32 - 1  # what every generator seeded from it (Python, NumPy, torch) accepts
MAX_IMAGE_SIDE = 4096
"""The largest side ``--ground-size`` / ``--aerial-size`` may have. The datasets' own images are at most 1024x2048
(VIGOR's panoramas, usually halved; CVACT's are 832x1664, satellite tiles up to 1200x1200), and one 4096x4096
image already fills 4 GiB in VGG16's first layer: a larger side is a typo (100000x100000), refused before anything
is built for it. Memory within the bound is estimated per batch (cvbench.nn.memory)."""


def validate(spec: RunSpec) -> None:
    """Check what needs no plugin and no compute; raise :class:`SpecError` naming the option."""
    _numbers(spec)
    _labels(spec)
    _choice("pretrain_branches", spec.pretrain_branches, PRETRAIN_BRANCHES)
    _choice("pretrain_data", spec.pretrain_data, PRETRAIN_DATA)
    for branch in BRANCHES:
        if getattr(spec, f"{branch}_init") == "pretrained" and not pretrains(spec, branch):
            raise SpecError(f"--{branch}-init pretrained needs pre-training of the {branch} branch: "
                            f"set --pretrainer and --pretrain-branches {branch} (or both)")
    for name in ("batch_size", "pretrain_batch_size", "eval_every", "eval_batch_size"):
        if int(getattr(spec, name)) < 1:
            raise SpecError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(spec, name)}")
    if spec.epochs < 0:
        raise SpecError(f"--epochs must be 0 (evaluate the start weights: a zero-shot baseline) or more, "
                        f"got {spec.epochs}")
    if spec.dim != AUTO_SIZE and int(spec.dim) < 1:
        raise SpecError(f"--dim must be at least 1 or auto, got {spec.dim}")
    _training(spec)
    if spec.batch_size < 2:
        raise SpecError("--batch-size must be at least 2: the losses need in-batch negatives")
    if spec.pretrain_epochs < 0:
        raise SpecError(f"--pretrain-epochs must be 0 or more, got {spec.pretrain_epochs}")
    for name in ("max_train_pairs", "max_val_queries", "max_pretrain_images"):
        value = getattr(spec, name)
        if value is not None and value < 2:
            raise SpecError(f"--{name.replace('_', '-')} must be at least 2, got {value}")
    if not 0 < spec.train_fraction <= 1:  # also rejects NaN
        raise SpecError(f"--train-fraction must be above 0 and at most 1 (the share of the training pairs "
                        f"fine-tuning uses), got {spec.train_fraction}")
    _choice("bad_images", spec.bad_images, BAD_IMAGES)
    for name in ("ground_size", "aerial_size"):
        size = getattr(spec, name)
        if size == AUTO_SIZE:
            continue
        if len(size) != 2 or min(size) < 8:
            raise SpecError(f"--{name.replace('_', '-')} must be HxW with both sides at least 8, got {size}")
        if max(size) > MAX_IMAGE_SIDE:
            raise SpecError(f"--{name.replace('_', '-')} {size[0]}x{size[1]}: each side must be at most "
                            f"{MAX_IMAGE_SIDE} pixels (the supported datasets' images are at most 2048 wide)")
    if not spec.loss:
        raise SpecError("at least one --loss is needed")
    _metric_names(spec.metrics)
    _keyed_options(spec)
    check_loggers(spec.loggers)
    _choice("ties", spec.ties, TIES)
    _choice("one_percent", spec.one_percent, ONE_PERCENT)
    _choice("hit_rate", spec.hit_rate, HIT_RATES)
    _choice("channels_last", spec.channels_last, CHANNELS_LAST)
    _choice("gpu_decode", spec.gpu_decode, ON_DEVICE)
    _choice("gpu_augment", spec.gpu_augment, ON_DEVICE)
    _choice("orientation", spec.orientation, ORIENTATIONS)
    try:
        view = spec.field_of_view()
    except ValueError as exc:
        raise SpecError(f"--fov {_show(spec.fov)}: {exc}") from None
    if spec.ground_size != AUTO_SIZE and view.width(spec.ground_size[1]) < 8:
        raise SpecError(f"--fov {spec.fov:g} leaves {view.width(spec.ground_size[1])} of the {spec.ground_size[1]} "
                        "columns of the panorama (--ground-size); the view needs at least 8: widen one of them")
    if not 0 <= spec.seed <= MAX_SEED:
        raise SpecError(f"--seed {spec.seed}: expected a whole number from 0 to {MAX_SEED}")
    if spec.workers < 0:
        raise SpecError(f"--workers {spec.workers}: expected 0 (load in the main process) or more")
    for name in ("data_root", "eval_data_root"):
        if getattr(spec, name) is not None:
            expand(getattr(spec, name), name)
    if spec.device not in ("auto", "cpu", "cuda", "mps") and not re.fullmatch(r"cuda:\d{1,3}", spec.device):
        raise SpecError(f"--device {_show(spec.device)}: expected auto, cpu, cuda, cuda:N or mps")


POSITIVE = ("lr", "pretrain_lr", "grad_clip")
NOT_NEGATIVE = ("weight_decay", "pretrain_weight_decay")


def _numbers(spec: RunSpec) -> None:
    """Every number finite (a NaN lr would train to NaN and then fail to write its record), learning rates and the
    clip positive, weight decays not negative, and every loss weight finite and positive."""
    for field in dataclasses.fields(RunSpec):
        value = getattr(spec, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"--{field.name.replace('_', '-')} {value}: expected a finite number")
    for name in POSITIVE:
        value = getattr(spec, name)
        if value is not None and not value > 0:
            raise SpecError(f"--{name.replace('_', '-')} {value:g}: expected a number above 0")
    for name in NOT_NEGATIVE:
        if getattr(spec, name) < 0:
            raise SpecError(f"--{name.replace('_', '-')} {getattr(spec, name):g}: expected 0 or more")
    for name, weight in spec.loss:
        if not (math.isfinite(weight) and weight > 0):
            raise SpecError(f"--loss {name}:{weight:g}: a loss weight must be a finite number above 0 (the "
                            "objective is the weighted sum, minimised)")


def _training(spec: RunSpec) -> None:
    """The optimiser, its schedule and what may train: combinations that cannot work fail here."""
    _choice("optimizer", spec.optimizer, OPTIMIZERS)
    _choice("schedule", spec.schedule, SCHEDULES)
    if spec.schedule == "milestones" and not spec.milestones:
        raise SpecError("--schedule milestones needs --milestones, the epochs where the lr drops x0.1 (e.g. 20,40)")
    if any(int(m) < 1 for m in spec.milestones):
        raise SpecError(f"--milestones {','.join(map(str, spec.milestones))}: epochs count from 1")
    if not 0 <= spec.warmup_epochs < max(spec.epochs, 1) or (spec.warmup_epochs and spec.schedule != "cosine"):
        raise SpecError(f"--warmup-epochs {spec.warmup_epochs:g}: expected 0 or more, below --epochs "
                        f"{spec.epochs}, and only with --schedule cosine")
    if spec.freeze_backbone and pretrains(spec, "ground") | pretrains(spec, "aerial"):
        raise SpecError("--freeze-backbone keeps the start weights, but --pretrainer would train the backbone "
                        "first: drop one of them (or start from a pre-trained checkpoint with --aerial-init FILE)")
    if spec.shared_backbone:
        starts = {branch: getattr(spec, f"{branch}_init") for branch in BRANCHES}
        if starts["ground"] != starts["aerial"]:
            raise SpecError(f"--shared-backbone makes one backbone of both branches, but --ground-init "
                            f"{starts['ground']} and --aerial-init {starts['aerial']} start them apart: give both "
                            "the same start")


def _keyed_options(spec: RunSpec) -> None:
    """``--loss-option`` / ``--metric-option`` name only losses and metrics the run uses (a typo would be ignored)."""
    for option, chosen, flag in (("loss_options", [name for name, _ in spec.loss], "--loss"),
                                 ("metric_options", list(spec.metrics), "--metric"),
                                 ("logger_options", list(spec.loggers), "--logger")):
        stray = sorted(set(getattr(spec, option)) - set(chosen))
        if stray:
            raise SpecError(f"--{option[:-1].replace('_', '-')} {', '.join(map(_show, stray))}.KEY=VALUE: the run "
                            f"uses no such {flag[2:]} (its {flag}: {', '.join(chosen)}); name one of these")


def check_loggers(names: tuple[str, ...]) -> None:
    """``--logger``: each a registered logger, none twice, with its library installed (a missing one is named with
    the extra that installs it, before the run folder exists and before any compute)."""
    import importlib.util

    from ..contract.conform import requirements
    from ..contract.registry import get_registry

    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SpecError(f"--logger {', '.join(map(_show, twice))} given more than once: each logger logs once")
    for name in names:
        modules, extra = requirements(get_registry().get("logger", name).factory)
        for module in modules:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):  # a parent package that fails to import, or a half-imported module
                found = False
            if not found:
                raise SpecError(f"--logger {name} needs the Python package {module!r}, which is not installed: "
                                + (f"pip install 'cvbench[{extra}]'" if extra else f"pip install {module}"))


def _labels(spec: RunSpec) -> None:
    """``--name`` and ``--tag``: text a folder name and a ``--where`` filter can hold.

    A name goes into the run folder's name (with characters other than
    letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``), so a path
    separator, a control character or an empty name is refused; a tag may
    not hold a comma, which separates tags in a listing and in ``--where``.
    """
    if spec.name is not None and (not spec.name.strip() or re.search(r"[/\\\x00-\x1f\x7f]", spec.name)):
        raise SpecError(f"--name {_show(spec.name)}: expected a non-empty label without / or \\ or control "
                        "characters (it names the run folder)")
    for tag in spec.tags:
        if not isinstance(tag, str) or not tag.strip() or re.search(r"[,\x00-\x1f\x7f]", tag):
            raise SpecError(f"--tag {_show(tag)}: expected a non-empty label without commas or control characters")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"--{name.replace('_', '-')} {_show(value)}: expected one of {', '.join(choices)}")


def _metric_names(names: tuple[str, ...]) -> None:
    """``--metric``: at least one name, each a non-blank string, none twice (the plugins are checked elsewhere)."""
    if not names:
        raise SpecError("at least one --metric is needed (e.g. --metric recall)")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"--metric {_show(name)}: expected the name of a metric plugin")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SpecError(f"--metric {', '.join(map(_show, twice))} given more than once: each metric is computed once")
