"""The shapes task: its seeded splits, exact mean IoU, a learning step, what it draws, its config."""

import pytest
import torch
from matplotlib.figure import Figure

from data.shapes_generator import NUM_CLASSES
from tasks.shapes import ShapesData, ShapesModel, ShapesTask, sum_segmentation_counts
from training.run_config import config_classes, parse_run_config
from training.task import TaskContext, find_task
from training.trainer_config import TrainingConfig
from utils.config_fields import all_specs, flatten, parse_config
from utils.configs import load_config_template

TINY = {
    "data": {"image_size": 16, "train_samples": 64, "val_samples": 32, "test_samples": 32, "max_shapes": 2},
    "model": {"channels": [8, 16]},
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors run fastest on one thread, and two threads crawl on busy shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_task(seed: int = 0, config: dict | None = None) -> ShapesTask:
    parsed = parse_config(config or TINY, ShapesTask.config_sections)
    return ShapesTask(TaskContext(parsed, seed, torch.device("cpu")))


def split_tensors(task: ShapesTask) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    datasets = task.build_datasets()
    return {name: getattr(datasets, name).tensors for name in ("train", "val", "test")}


def test_the_same_seed_gives_identical_splits_and_another_seed_or_split_differs() -> None:
    first, again, other = split_tensors(make_task(0)), split_tensors(make_task(0)), split_tensors(make_task(1))
    for name in first:
        assert all(torch.equal(a, b) for a, b in zip(first[name], again[name]))
        assert not torch.equal(first[name][0], other[name][0])
    assert not torch.equal(first["val"][0], first["test"][0])


def test_splits_have_the_configured_sizes_and_masks_hold_every_class_and_nothing_else() -> None:
    splits = split_tensors(make_task())
    for name, count in (("train", 64), ("val", 32), ("test", 32)):
        images, masks = splits[name]
        assert images.shape == (count, 3, 16, 16) and images.dtype == torch.float32
        assert masks.shape == (count, 16, 16) and masks.dtype == torch.int64
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert masks.unique().tolist() == list(range(NUM_CLASSES))


def test_the_task_builds_a_unet_of_its_widths_with_one_logit_per_class() -> None:
    model = make_task().build_model()
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, NUM_CLASSES, 16, 16)
    assert [block[0][0].out_channels for block in model.down] == TINY["model"]["channels"]


def test_summarize_gives_miou_one_and_no_loss_to_speak_of_for_a_perfect_prediction() -> None:
    task = make_task()
    images, masks = split_tensors(task)["val"]
    logits = 50.0 * torch.nn.functional.one_hot(masks, NUM_CLASSES).movedim(-1, 1).float()  # (B, K, H, W)
    metrics = task.summarize(task.eval_step(lambda _: logits, (images, masks)), "val", 0)
    assert metrics["miou"] == 1.0 and metrics["accuracy"] == 1.0
    assert metrics["loss"] < 1e-3
    assert set(metrics) == set(ShapesTask.metrics)


def test_miou_averages_only_classes_present_in_truth_or_prediction() -> None:
    task = make_task()
    masks = torch.tensor([[[0, 1], [2, 3]], [[0, 0], [1, 1]]])  # (2, 2, 2)
    predictions = torch.tensor([[[0, 1], [2, 2]], [[0, 0], [1, 0]]])
    sums = sum_segmentation_counts(predictions, masks, cross_entropy=torch.tensor(0.0), dice=torch.tensor(0.0))
    # background 3/4, circle 2/3, square 1/2, triangle 0/1
    assert sums["intersection"].tolist() == [3, 2, 1, 0] and sums["union"].tolist() == [4, 3, 2, 1]
    metrics = task.summarize(sums, "val", 0)
    assert metrics["miou"] == pytest.approx((3 / 4 + 2 / 3 + 1 / 2 + 0) / 4)
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    background = torch.zeros(1, 2, 2, dtype=torch.int64)
    only_background = sum_segmentation_counts(background, background, cross_entropy=torch.tensor(0.0),
                                              dice=torch.tensor(0.0))
    assert task.summarize(only_background, "val", 0)["miou"] == 1.0


def test_sums_of_two_halves_summarize_like_the_whole_batch() -> None:
    task = make_task()
    images, masks = split_tensors(task)["val"]
    model = task.build_model().eval()
    with torch.no_grad():
        whole = task.eval_step(model, (images, masks))
        halves = [task.eval_step(model, (images[i : i + 16], masks[i : i + 16])) for i in (0, 16)]
    summed = {key: halves[0][key] + halves[1][key] for key in whole}
    assert task.summarize(summed, "val", 0) == pytest.approx(task.summarize(whole, "val", 0))


def test_train_step_loss_falls_over_thirty_steps_on_a_tiny_batch() -> None:
    torch.manual_seed(0)
    task = make_task()
    images, masks = split_tensors(task)["train"]
    batch = (images[:8], masks[:8])
    model = task.build_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        output = task.train_step(model, batch)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.loss.item())
    assert output.count == 8 and 0.0 <= output.metrics["accuracy"].item() <= 1.0
    assert losses[-1] < 0.5 * losses[0]


def test_draw_returns_one_segmentation_figure_of_at_most_eight_samples() -> None:
    task = make_task()
    images, masks = split_tensors(task)["val"]
    model = task.build_model().eval()
    drawn = task.draw(model, (images, masks), {}, "val", 0)
    assert list(drawn) == ["segmentation"] and isinstance(drawn["segmentation"], Figure)
    grid = drawn["segmentation"].axes[0].images[0].get_array()
    assert grid.shape[:2] == (3 * (16 + 2) + 2, 8 * (16 + 2) + 2)  # image, truth, prediction rows of 8 tiles


def test_the_task_is_registered_and_its_keys_collide_with_no_engine_or_writer_key() -> None:
    assert find_task("shapes") is ShapesTask
    task_keys = all_specs(ShapesTask.config_sections)
    assert {spec.section for spec in task_keys.values()} == {"data", "model"}
    assert ShapesData.SECTION == "data" and ShapesModel.SECTION == "model"
    everything = all_specs(config_classes(ShapesTask))  # a key declared twice raises ValueError
    assert "data.batch_size" in everything and "training.epochs" in everything


def test_the_config_template_parses_and_spells_out_every_key() -> None:
    template = load_config_template("shapes")
    run = parse_run_config(template, source="config/shapes.json")
    assert run.task is ShapesTask
    assert flatten(template).keys() == flatten(run.parsed.raw).keys()  # no key left to its default
    assert run.parsed[TrainingConfig].best_metric == "val/miou"
