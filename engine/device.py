"""Choosing the device and the speed settings that go with it."""

from __future__ import annotations

import contextlib
import os

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


def fast_path(device: torch.device) -> bool:
    """Whether to take the GPU's speed settings: bf16 autocast, channels-last convolutions,
    fused optimisers. On CUDA always; on the CPU when GENSTUDIO_GPU_PATH=1, which the tests
    set so that dtype and memory-layout bugs of that path show up on machines with no GPU."""
    return device.type == "cuda" or (device.type == "cpu" and os.environ.get("GENSTUDIO_GPU_PATH") == "1")


def autocast(device: torch.device):
    """bf16 autocast on the fast path (no loss scaling needed, unlike fp16); plain fp32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if fast_path(device):
        return torch.autocast("cpu", dtype=torch.bfloat16)
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


class TooBigForMemory(RuntimeError):
    """A model that would not fit in the device's memory, found before building it."""


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a new model on ``device``; None when it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            for line in open("/proc/meminfo"):
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


def check_fits(build, device: torch.device, copies: int = 4) -> int:
    """Count the parameters of the model ``build()`` makes, on the meta device (nothing is
    allocated), and refuse it with the figures when training it cannot fit: ``copies``
    float32 values per parameter (weights, gradients and Adam's two moments). Returns the
    parameter count."""
    with torch.device("meta"):
        n = sum(p.numel() for p in build().parameters())
    need, free = n * 4 * copies, available_memory(device)
    if free is not None and need > free:
        raise TooBigForMemory(f"a model of {n / 1e6:,.1f}M parameters needs about {need / 1e9:,.1f} GB for its "
                              f"weights, gradients and optimiser state; this {device.type} has "
                              f"{free / 1e9:,.1f} GB free")
    return n


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, bf16)"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n != 1 else ''})"
    return device.type
