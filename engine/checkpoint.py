"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint holds the format version, the recipe and its hyperparameters, the step, the
training time so far, the recipe's state (model, optimiser, data sampler) and the global
RNG states, so a resumed run continues exactly where the saved one was.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch

from engine.rundir import atomic_write_bytes

CHECKPOINT_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, from another recipe, or unsafe to load."""


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: str | Path, *, recipe: str, params: dict, step: int, elapsed: float, state: dict) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "recipe": recipe,
        "params": params,
        "step": int(step),
        "elapsed": float(elapsed),
        "state": state,
        "rng": rng_state(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any pickle that would import or call arbitrary code.
        globals_ = [line.strip() for line in str(e).splitlines() if "GLOBAL" in line]
        if globals_:
            raise CheckpointError(
                f"refused to load {path}: it would run code when loaded ({globals_[0]}). "
                f"Only load checkpoints GenStudio wrote."
            ) from None
        raise CheckpointError(f"{path} is damaged or not a checkpoint; it was not loaded.") from None
    except Exception as e:  # truncated zip, wrong magic number, ...
        raise CheckpointError(f"{path} is damaged and cannot be read ({type(e).__name__}: {e}).") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or "state" not in payload:
        raise CheckpointError(f"{path} is not a GenStudio checkpoint of format {CHECKPOINT_FORMAT}")
    return payload


def restore(recipe, state: dict) -> None:
    """Load a checkpoint's recipe state into ``recipe``. A state the recipe's networks
    cannot take (saved before a lesson's model changed shape, or missing a part) is a
    CheckpointError that says so, not a traceback."""
    try:
        recipe.load_state_dict(state)
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()
        detail = first[-1].strip() if first else type(e).__name__
        raise CheckpointError(f"this checkpoint was saved by an earlier version of the recipe's model and does not "
                              f"fit the current one ({detail[:200]}); start a new run") from None
