"""Distribution for every recipe that trains: the runner wraps a recipe's modules in
DistributedDataParallel under torchrun. Two processes with gloo on the CPU, through the real
CLI: the copies of the model end identical, the loss falls, metrics are the processes' mean.
And two "machines" on one: two torchrun agents meeting at one rendezvous endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from conftest import ROOT
from engine.registry import RECIPES
from engine.rundir import RunDir, read_history

TINY = {
    "vae": {"width": 8, "latent_dim": 2, "batch_size": 32, "train_size": 512, "lr": 5e-3},
    "dcgan": {"width": 8, "noise_dim": 8, "batch_size": 32, "train_size": 512},
    "diffusion": {"base": 4, "batch_size": 32, "train_size": 512, "timesteps": 50, "lr": 3e-3},
}
LOSS = {"vae": "train/loss", "dcgan": "train/loss_d", "diffusion": "train/loss"}


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT))


def test_every_recipe_that_declares_ddp_can_be_wrapped():
    import importlib

    for name, entry in RECIPES.items():
        recipe = importlib.import_module(entry.module).RECIPE
        assert bool(recipe.ddp_modules) == entry.distributed, name  # the torch-free flag tells the truth


@pytest.mark.parametrize("recipe", sorted(TINY))
def test_two_processes_train_one_model(tmp_path, recipe):
    sets = [f"--set={k}={v}" for k, v in TINY[recipe].items()]
    out = cli("train", recipe, "--nproc", "2", "--device", "cpu", "--steps", "40", "--run-dir", str(tmp_path / "r"),
              *sets)
    rd = RunDir(tmp_path / "r")
    log = rd.log_path.read_text() if rd.log_path.exists() else ""
    assert out.returncode == 0, out.stdout + out.stderr + log
    ddp = [e.payload for e in rd.events() if e.type == "ddp"]
    assert ddp == [{"world_size": 2, "max_param_diff": 0.0}], log
    hist = read_history(rd)
    assert hist.state == "finished" and hist.step == 40
    if recipe != "dcgan":  # a GAN's losses need not fall; that its copies agree is the point
        losses = [v for _, v in hist.metrics[LOSS[recipe]]]
        assert losses[-1] < losses[0], losses
    assert any("gloo" in line for line in hist.logs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_meet_at_a_rendezvous(tmp_path):
    """`genstudio train ... --nnodes 2 --rdzv-endpoint HOST:PORT` on each machine, sharing the
    run folder: here both "machines" are this one."""
    endpoint = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "studio.cli", "train", "vae", "--device", "cpu", "--steps", "20", "--nnodes", "2",
            "--rdzv-endpoint", endpoint, "--run-dir", str(tmp_path / "r"),
            *[f"--set={k}={v}" for k, v in TINY["vae"].items()]]
    nodes = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(ROOT))
             for _ in range(2)]
    outs = [node.communicate(timeout=600)[0] for node in nodes]
    rd = RunDir(tmp_path / "r")
    log = rd.log_path.read_text() if rd.log_path.exists() else ""
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(outs) + log
    ddp = [e.payload for e in rd.events() if e.type == "ddp"]
    assert ddp == [{"world_size": 2, "max_param_diff": 0.0}]
    assert read_history(rd).step == 20


def test_a_machine_arriving_while_the_other_writes_the_config_joins(tmp_path):
    """Two machines start at once: the first has made the folder and is writing config.json
    (its temporary file is there, the config not yet); the second used to give up with
    "exists and is not empty" and the first waited at the rendezvous for ten minutes."""
    import threading
    import time
    from types import SimpleNamespace

    from studio.cli import _join_or_create

    folder = tmp_path / "r"
    folder.mkdir()
    (folder / ".config.json.99999.tmp").write_text("{")  # the first machine, mid-write
    first = RunDir(folder)

    def finish_writing():
        time.sleep(0.5)
        first.write_config("vae", {"steps": 20}, device="cpu", nproc=1)
        (folder / ".config.json.99999.tmp").unlink()

    writer = threading.Thread(target=finish_writing)
    writer.start()
    args = SimpleNamespace(run_dir=str(folder), rdzv_endpoint="127.0.0.1:1", nproc=1, sets=[], steps=20, device="cpu")
    try:
        joined = _join_or_create(args, "vae", None)
    finally:
        writer.join()
    assert joined.path == folder and joined.read_config()["recipe"] == "vae"
