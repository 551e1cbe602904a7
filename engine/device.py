"""Choosing the device and the speed settings that go with it."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(requested: str = "auto") -> torch.device:
    """auto picks cuda, then mps, then cpu; an explicit request that cannot be met is an error."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device auto or cpu")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("--device mps was asked for but this machine has no Apple GPU; use --device auto or cpu")
    if requested not in ("cpu", "cuda", "mps"):
        raise RuntimeError(f"unknown device {requested!r}: use auto, cpu, cuda or mps")
    return torch.device(requested)


def configure(device: torch.device) -> None:
    """Global speed switches: TF32 matmuls and cuDNN autotuning on CUDA."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device):
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16); plain fp32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def one_thread(device: torch.device | None = None):
    """Run torch ops on one CPU thread, restoring the setting after (on a GPU, nothing).

    Hundreds of tiny ops in a row (token-by-token generation; drawing procedural faces or
    shapes, element by element) gain nothing from threads: each op ends at a barrier that
    costs more than it saves, and on a busy machine a barrier waits for a descheduled
    thread. Measured on 2 cores: 160 tokens took 0.5 s on one thread and 15-45 s on two
    while another program was busy; 20,000 faces took 4 s on one thread and 135 s on two.
    Training keeps all threads."""
    if device is not None and device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, bf16)"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n != 1 else ''})"
    return device.type
