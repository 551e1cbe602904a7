"""The GPU's half of every recipe, run on the CPU: GENSTUDIO_GPU_PATH=1 turns on what CUDA
turns on (bf16 autocast, channels-last convolutions, fused optimisers; the data already
lives on the device), so dtype and memory-layout bugs show up here, without a GPU. Each
recipe trains a few steps through the real runner, draws its views, saves a checkpoint and
continues from it."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from engine.registry import RECIPES, get_config_class
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import validate

TINY = {
    "vae": {"width": 8, "latent_dim": 2, "batch_size": 8, "train_size": 256},
    "gan2d": {"hidden": 16, "batch_size": 64},
    "dcgan": {"width": 4, "noise_dim": 8, "batch_size": 8, "train_size": 256},
    "cwgan": {"width": 8, "noise_dim": 8, "batch_size": 8, "train_size": 256},
    "cyclegan": {"width": 4, "res_blocks": 1, "batch_size": 2, "train_size": 64},
    "gpt": {"model": "custom", "layers": 1, "heads": 2, "width": 16, "context": 16, "batch_size": 4, "warmup": 2,
            "max_new_tokens": 8},
    "translator": {"width": 32, "heads": 2, "layers": 1, "ff": 64, "batch_size": 16, "train_size": 200, "warmup": 2},
    "diffusion": {"base": 4, "batch_size": 8, "train_size": 256, "timesteps": 50, "sampler_steps": 10},
    "text2image": {"base": 8, "text_dim": 16, "batch_size": 4, "train_size": 256, "timesteps": 50, "sampler_steps": 10},
    "start": {"train_size": 64, "batch_size": 16},
    "lstm": {"embed": 8, "hidden": 16, "layers": 1, "batch_size": 4, "bptt": 8, "warmup": 2, "max_new_tokens": 8},
    "pixelcnn": {"width": 8, "blocks": 1, "batch_size": 4, "train_size": 256, "samples": 4},
    "realnvp": {"layers": 2, "hidden": 8, "batch_size": 32},
    "ebm": {"hidden": 8, "batch_size": 16, "buffer_size": 64, "langevin_steps": 2, "sample_steps": 4},
    "musegan": {"dataset": "midi", "z_dim": 8, "width": 16, "batch_size": 4, "critic_steps": 1},
    "music_transformer": {"dataset": "midi", "layers": 1, "heads": 2, "width": 16, "context": 16, "batch_size": 4,
                          "warmup": 2, "prompt_bars": 1, "new_bars": 1},
    "mlm": {"layers": 1, "heads": 2, "width": 16, "context": 16, "batch_size": 4, "warmup": 2},
    "vqvae": {"width": 8, "codes": 16, "code_dim": 4, "prior_width": 16, "prior_layers": 1, "prior_heads": 2,
              "batch_size": 8, "train_size": 256, "ae_steps": 2},  # 3 steps, then 5: across the switch
    "latent_diffusion": {"ae_width": 8, "latent_channels": 2, "base": 8, "batch_size": 8, "train_size": 256,
                         "ae_steps": 2, "sampler_steps": 10},
    "stylegan": {"width": 4, "critic_width": 4, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "batch_size": 8,
                 "train_size": 256},
    "world_model": {"episodes": 16, "z_dim": 4, "width": 4, "hidden": 8, "mixtures": 2, "vae_steps": 1,
                    "rnn_steps": 1, "popsize": 4, "dreams": 1, "max_steps": 20, "batch_size": 8, "rnn_batch": 4,
                    "seq_len": 8},
}
NEEDS_MIDI = {"musegan", "music_transformer"}  # trained on a small folder of MIDI files, not the chorale corpus


@pytest.fixture(autouse=True)
def untrained_judges(monkeypatch):
    """The scoring classifiers untrained: this checks dtypes and layouts, not quality."""
    from engine.metrics import digit_classifier, face_classifier, shape_classifier

    monkeypatch.setattr(digit_classifier, "get_digit_classifier", lambda *a, **k: digit_classifier.DigitClassifier().eval())
    monkeypatch.setattr(face_classifier, "get_face_classifier",
                        lambda device="cpu", size=32, **k: face_classifier.FaceClassifier(size).eval())
    monkeypatch.setattr(shape_classifier, "get_shape_classifier", lambda *a, **k: shape_classifier.ShapeClassifier().eval())
    monkeypatch.setenv("GENSTUDIO_GPU_PATH", "1")


def test_the_fast_path_is_what_cuda_would_get():
    from engine.device import autocast, fast_path

    cpu = torch.device("cpu")
    assert fast_path(cpu)
    with autocast(cpu):
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16


def test_every_recipe_has_a_tiny_gpu_path_config():
    assert set(RECIPES) <= set(TINY), set(RECIPES) - set(TINY)


@pytest.mark.parametrize("recipe", sorted(TINY))
def test_every_recipe_trains_draws_and_resumes_on_the_gpu_path(tmp_path, recipe):
    extra = {}
    if recipe in NEEDS_MIDI:
        from test_music_data import make_midi_folder

        extra["data_path"] = str(make_midi_folder(tmp_path / "midi"))
    cfg = validate(get_config_class(recipe), {**TINY[recipe], **extra, "steps": 3})
    rd = RunDir(tmp_path / recipe)
    rd.path.mkdir()
    rd.write_config(recipe, asdict(cfg), device="cpu")
    rd.send("sample")
    assert Runner(rd.path).run() == 0, rd.log_path.read_text() if rd.log_path.exists() else ""
    hist = read_history(rd)
    assert hist.state == "finished" and not hist.errors and hist.samples
    assert all(v == v and abs(v) != float("inf") for pts in hist.metrics.values() for _, v in pts)
    cfg = rd.read_config()
    cfg["params"]["steps"] = 5
    from engine.rundir import atomic_write_json

    atomic_write_json(rd.config_path, cfg)
    assert Runner(rd.path).run() == 0  # continues from the bf16-trained checkpoint
    assert read_history(rd).step == 5


def test_the_gpu_suite_says_so_when_there_is_no_gpu(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run the suite itself")
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}, timeout=120)
    assert done.returncode == 3 and "no CUDA GPU" in done.stderr
