"""The run's first line: its expected wall time, from measured step rates times the planned counts."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from cvbench.runs.expected_time import Plan, Rates, duration, evaluated_epochs, expected_line, expected_seconds


def test_the_estimate_is_the_measured_rates_times_the_planned_counts():
    plan = Plan(pretrain={"aerial": 276}, finetune_steps=320, evaluations=3, eval_images=2000, other_images=1024)
    rates = Rates(pretrain_step=0.2, finetune_step=0.31, embed_image=0.002)
    # by hand: 276 x 0.2 = 55.2; 320 x 0.31 = 99.2; (3 x 2000 + 1024) x 0.002 = 14.048
    assert expected_seconds(plan, rates) == pytest.approx(168.448)
    line = expected_line(plan, rates, spent=10.0)  # 178.448 s in all
    assert line == ("expected: about 2 min 58 s on this machine (measured 0.20 s/step x 276 pre-training steps, "
                    "0.31 s/step x 320 fine-tuning steps, 2.0 ms/image x 7,024 images embedded in 3 evaluations "
                    "and the pre-training probes)")


def test_a_run_without_pre_training_names_only_what_it_does():
    plan = Plan(pretrain={}, finetune_steps=32, evaluations=1, eval_images=500, other_images=0)
    line = expected_line(plan, Rates(0.0, 0.5, 0.01))  # 32 x 0.5 + 500 x 0.01 = 21 s
    assert line == ("expected: about 21 s on this machine (measured 0.50 s/step x 32 fine-tuning steps, "
                    "10.0 ms/image x 500 images embedded in 1 evaluation)")


def test_a_pre_training_stage_names_its_probes_and_no_evaluation():
    plan = Plan(pretrain={"aerial": 10}, finetune_steps=0, evaluations=0, eval_images=0, other_images=1024)
    line = expected_line(plan, Rates(0.5, 0.0, 0.001))  # 10 x 0.5 + 1024 x 0.001 = 6.024 s
    assert line == ("expected: about 6 s on this machine (measured 0.50 s/step x 10 pre-training steps, "
                    "1.0 ms/image x 1,024 images embedded in the pre-training probes)")


@pytest.mark.parametrize("seconds, text", [(44.6, "45 s"), (59.6, "1 min 00 s"), (160.0, "2 min 40 s"),
                                           (3900.0, "1 h 05 min")])
def test_durations_read_as_a_wait(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("epochs, every, expected", [(10, 1, list(range(11))), (10, 5, [0, 5, 10]),
                                                     (10, 3, [0, 3, 6, 9, 10]), (10, 20, [0, 10]), (0, 5, [0])])
def test_evaluations_come_before_training_every_nth_epoch_and_after_the_last(epochs, every, expected):
    assert evaluated_epochs(epochs, every) == expected


def test_an_evaluation_between_epochs_leaves_every_random_state_as_it_was():
    from cvbench.runs.runner import keeping_random_state

    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    expected = torch.rand(4), np.random.rand(), random.random()
    torch.manual_seed(3), np.random.seed(3), random.seed(3)

    def evaluation() -> str:  # draws as an evaluation's DataLoaders and a careless metric would
        torch.randint(0, 10, (5,)), np.random.rand(3), random.random()
        return "metrics"

    assert keeping_random_state(evaluation) == "metrics"
    assert torch.equal(torch.rand(4), expected[0])
    assert np.random.rand() == expected[1] and random.random() == expected[2]


def test_the_plan_counts_the_smoke_runs_steps_and_images(trained_run):
    """Hand count on the small world: 160 training and 160 validation pairs, the smoke preset with MoCov2."""
    from cvbench.runs.assemble import resolve_spec
    from cvbench.runs.expected_time import plan_run
    from cvbench.runs.folder import RunFolder
    from cvbench.runs.subsets import load_data, open_dataset

    spec = resolve_spec(RunFolder(trained_run).read_spec())
    spec.pretrainer, spec.epochs, spec.eval_every = "mocov2", 3, 2
    data = load_data(spec, *open_dataset(spec))
    plan = plan_run(spec, data)
    # pre-training sees 128 train + 128 val aerial images (max_pretrain_images of each subset): 256 // 32 = 8 steps;
    # fine-tuning 128 pairs in batches of 32: 4 steps x 3 epochs; evaluations after epochs 0, 2 and 3, each of
    # 128 queries and the 160 tiles; the probe embeds two views of 160 val tiles before and after pre-training.
    assert plan == Plan(pretrain={"aerial": 8}, finetune_steps=12, evaluations=3, eval_images=128 + 160,
                        other_images=2 * 2 * 160, pretrain_batch=32, finetune_batch=32)
    # a pre-training stage alone: the same steps and probes, no evaluation
    assert plan_run(spec, data, finetunes=False) == Plan({"aerial": 8}, 0, 0, 0, 640, pretrain_batch=32)


def test_the_measurement_changes_neither_the_model_nor_any_random_state(trained_run, monkeypatch):
    from cvbench.runs import expected_time
    from cvbench.runs.assemble import build_model, resolve_spec
    from cvbench.runs.expected_time import measure_rates, plan_run
    from cvbench.runs.folder import RunFolder
    from cvbench.runs.subsets import load_data, open_dataset

    spec = resolve_spec(RunFolder(trained_run).read_spec())
    spec.pretrainer, spec.batch_size, spec.pretrain_batch_size, spec.eval_batch_size = "mocov2", 8, 16, 16
    data = load_data(spec, *open_dataset(spec))
    model = build_model(spec)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    monkeypatch.setattr(expected_time, "TIMED_STEPS", 1)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    rates = measure_rates(spec, model, data, torch.device("cpu"), plan_run(spec, data))
    assert rates.pretrain_step > 0 and rates.finetune_step > 0 and rates.embed_image > 0
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert model.training


def test_a_run_pre_training_both_branches_times_each_and_weighs_them_by_their_steps(monkeypatch):
    """The ground and aerial images differ in size, so one branch's step time is not the other's: the rate is
    each branch's measured seconds a step weighted by its planned steps."""
    from cvbench.runs import expected_time
    from cvbench.runs.expected_time import StepTime, measure_rates
    from cvbench.spec import RunSpec

    seconds = {("pretrain", "ground"): 2.0, ("pretrain", "aerial"): 1.0, ("finetune", ""): 0.5, ("embed", ""): 0.64}
    monkeypatch.setattr(expected_time, "measure_step", lambda stage, spec, model, data, device, branch="", steps=None:
                        StepTime(seconds[stage, branch], 32))
    plan = Plan(pretrain={"ground": 10, "aerial": 30}, finetune_steps=5, evaluations=1, eval_images=100,
                other_images=0)
    rates = measure_rates(RunSpec(), torch.nn.Linear(2, 2), None, torch.device("cpu"), plan)
    # by hand: (10 x 2.0 + 30 x 1.0) / 40 = 1.25 s a pre-training step; 0.64 s / 32 images = 0.02 s an image
    assert rates == Rates(pretrain_step=1.25, finetune_step=0.5, embed_image=0.02)


def test_the_first_line_a_run_prints_is_its_expected_time(trained_run):
    text = (trained_run.parent / "stderr.txt").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("expected: about "), lines[:3]
    assert text.index("on this machine (measured") < text.index("cvbench run: dataset synthetic")


def test_each_batch_is_fetched_with_one_thread_and_the_step_keeps_them_all():
    from cvbench.training.loop import one_thread_each

    threads = torch.get_num_threads()
    seen = []

    def batches():
        for item in range(3):
            seen.append(torch.get_num_threads())
            yield item

    fetched = []
    for item in one_thread_each(batches()):
        fetched.append((item, torch.get_num_threads()))
    assert seen == [1, 1, 1] and fetched == [(0, threads), (1, threads), (2, threads)]


def test_a_mocov2_batch_of_default_size_tiles_is_the_same_bits_with_one_thread_as_with_two():
    from cvbench.data.augment import mocov2_augmentation

    augment = mocov2_augmentation((64, 64))
    tiles = torch.randint(0, 256, (16, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    views = {}
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            torch.manual_seed(7)
            views[count] = torch.stack([augment(tile) for tile in tiles])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(views[1], views[2])


def test_a_mining_samplers_embedding_is_in_the_expected_time():
    """A hard-negative sampler embeds the training pairs and their tiles before each epoch but the first: the
    first line counted none of it (Sample4Geo's preset mines 9 times)."""
    plan = Plan(pretrain={}, finetune_steps=10, evaluations=2, eval_images=500, other_images=0, mining_images=3000)
    rates = Rates(pretrain_step=0.0, finetune_step=1.0, embed_image=0.002)
    # by hand: 10 x 1.0 + (2 x 500 + 3000) x 0.002 = 10 + 8 = 18 s
    assert expected_seconds(plan, rates) == pytest.approx(18.0)
    assert expected_line(plan, rates) == ("expected: about 18 s on this machine (measured 1.00 s/step x 10 fine-tuning "
                                          "steps, 2.0 ms/image x 4,000 images embedded in 2 evaluations and the "
                                          "sampler's mining)")


def test_the_measured_step_fetches_its_batch_with_one_thread_as_the_run_does():
    """On the CPU the epoch loop fetches each batch with one intra-op thread (``one_thread_each``); the measurement
    fetched it with every thread, which took 10-30x longer on a busy machine and inflated the first line."""
    from cvbench.runs.expected_time import _load_batch

    seen = []

    class Recording(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, index: int) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return torch.zeros(2)

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _, batch = _load_batch(Recording(), 3, torch.device("cpu"))
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    assert seen == [1, 1, 1] and tuple(batch.shape) == (3, 2) and after == 2



def test_the_pre_training_measurement_makes_its_views_as_the_stage_does(trained_run, monkeypatch):
    """With ``--gpu-augment on`` (on CUDA: auto) the stage makes each batch's two views on the device inside its
    step; the measurement built its own pretrainer and made the views on the host, another pipeline."""
    from cvbench.runs import expected_time
    from cvbench.runs.assemble import build_model, resolve_spec
    from cvbench.runs.folder import RunFolder
    from cvbench.runs.subsets import load_data, open_dataset
    from cvbench.training.pretrain import DeviceViews

    spec = resolve_spec(RunFolder(trained_run).read_spec())
    spec.pretrainer, spec.gpu_augment, spec.pretrain_batch_size = "mocov2", "on", 16
    made, stepped = [], []
    monkeypatch.setattr(DeviceViews, "__call__", lambda self, images, reader, device: made.append(len(images))
                        or (images, images))
    monkeypatch.setattr(expected_time, "pretrain_step", lambda pretrainer, optimizer, params, view1, *rest, **options:
                        stepped.append(len(view1)))
    step = expected_time.measure_step("pretrain", spec, build_model(spec), load_data(spec, *open_dataset(spec)),
                                      torch.device("cpu"), "aerial", steps=1)
    # the warm-up step and the timed one, each making the views of its batch of 16 images
    assert made == stepped == [16, 16] and step.items == 16
