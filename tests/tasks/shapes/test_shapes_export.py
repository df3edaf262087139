"""The shapes task's UNet exported in each format from a trained run: the artefacts, reloaded as
their users would load them, give the model's masks' logits within each format's tolerance."""

import io

import torch

from training.export import EXPORTERS, export_model
from training.export_checks import TOLERANCES, compare
from training.inference import load_trained
from training.run_config import parse_run_config
from training.session import run_session
from utils.configs import apply_overrides, load_config_template
from utils.management import create_run
from utils.runs.run import Run

TINY = [
    "data.image_size=16", "data.train_samples=32", "data.val_samples=8", "data.test_samples=20",
    "data.max_shapes=2", "data.batch_size=16", "model.channels=[4, 8]", "training.epochs=1",
    "training.draw_every=null", "logging.tensorboard=false", "logging.wandb=false",
]


def test_each_format_of_a_trained_unet_reloads_within_its_tolerance_of_eager():
    config = apply_overrides(load_config_template("shapes"), TINY)
    create_run("shapes", "tiny", config)
    assert run_session(Run.require("shapes", "tiny"), parse_run_config(config), torch.device("cpu"), resume=False).exit_code == 0
    trained = load_trained("shapes", "tiny")
    inputs = trained.task.example_inputs()
    assert inputs[0].shape == (16, 3, 16, 16), "the test split's first 16 images"

    exports = {format: export_model(format, trained.model, inputs, trained.task.build_model) for format in EXPORTERS}
    assert all(export.difference <= export.limit and export.checked_batch == 16 for export in exports.values())

    import onnxruntime
    from safetensors.torch import load

    images = inputs[0][:5]  # (5, 3, 16, 16): a batch size neither traced nor checked
    fresh = trained.task.build_model()
    fresh.load_state_dict(load(exports["safetensors"].data))
    session = onnxruntime.InferenceSession(exports["onnx"].data, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        eager = trained.model(images)  # (5, 4, 16, 16)
        reloaded = {
            "safetensors": fresh.eval()(images),
            "pt2": torch.export.load(io.BytesIO(exports["pt2"].data)).module()(images),
            "onnx": torch.from_numpy(session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]),
        }
    for format, outputs in reloaded.items():
        difference, limit = compare([outputs], [eager], TOLERANCES[format])
        assert outputs.shape == (5, 4, 16, 16) and difference <= limit, format
