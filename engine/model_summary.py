"""The summary both books print for every model, made from the real modules while they
train: a tree of layers with the shape of each one's output and its parameter count.

The runner records it during the first training step of a process (forward hooks that
only read shapes, removed straight after: the step computes exactly what it would have)
and writes it as the "model" view:

    {"rows": [{"depth": int, "name": str, "type": str, "shape": str, "params": int,
               "trainable": int, "code": str}, ...],
     "total": int, "trainable": int}

``depth`` 0 is a model the recipe trains (its attribute name, as in ``checkpointed``);
``shape`` is the output of the module's first call in that step ("" when it was not
called: a module used only when sampling); ``params`` counts the module's parameters,
its children's included; ``code`` is a ``code:`` link to the class in engine/ that the row
belongs to (for a PyTorch layer, the class that holds it), or "".
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
import torch.nn as nn

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_ROWS = 400  # a tree longer than this is cut (with a last row that says so)


def models_of(recipe) -> dict[str, nn.Module]:
    """The modules a recipe trains: its checkpointed attributes that are nn.Modules."""
    found = {}
    for name in getattr(recipe, "checkpointed", ()):
        module = getattr(recipe, name, None)
        if isinstance(module, nn.Module):
            found[name] = module
    return found


def shape_text(value) -> str:
    """(B, 64, 14, 14) for a tensor; a tuple or list of tensors as their shapes joined."""
    if isinstance(value, torch.Tensor):
        return "(" + ", ".join(str(d) for d in value.shape) + ")"
    if isinstance(value, (tuple, list)):
        parts = [shape_text(v) for v in value]
        return " ".join(p for p in parts if p)
    if isinstance(value, dict):
        return " ".join(shape_text(v) for v in value.values() if shape_text(v))
    return ""


def code_link(cls: type) -> str:
    """code:engine/models/x.py#Class for a class defined under engine/; "" otherwise."""
    try:
        path = Path(inspect.getsourcefile(cls) or "").resolve()
    except TypeError:
        return ""
    try:
        rel = path.relative_to(REPO_ROOT)
    except ValueError:
        return ""
    return f"code:{rel.as_posix()}#{cls.__qualname__}" if rel.parts[:1] == ("engine",) else ""


@contextmanager
def recording(models: dict[str, nn.Module]) -> Iterator[dict[nn.Module, str]]:
    """While the block runs, remember the output shape of each module's first call."""
    shapes: dict[nn.Module, str] = {}
    handles = []

    def hook(module, args, output):
        if module not in shapes:
            shapes[module] = shape_text(output)

    try:
        for model in models.values():
            for module in model.modules():
                handles.append(module.register_forward_hook(hook))
        yield shapes
    finally:
        for handle in handles:
            handle.remove()


def summary_rows(models: dict[str, nn.Module], shapes: dict[nn.Module, str]) -> dict:
    """The "model" view's data from the modules and the shapes one step recorded."""
    rows: list[dict] = []

    def visit(name: str, module: nn.Module, depth: int, link: str) -> None:
        own = code_link(type(module)) or link
        params = sum(p.numel() for p in module.parameters())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        rows.append({"depth": depth, "name": name, "type": type(module).__name__, "shape": shapes.get(module, ""),
                     "params": params, "trainable": trainable, "code": own})
        for child_name, child in module.named_children():
            visit(child_name, child, depth + 1, own)

    for name, model in models.items():
        visit(name, model, 0, "")
    total = sum(r["params"] for r in rows if r["depth"] == 0)
    trainable = sum(r["trainable"] for r in rows if r["depth"] == 0)
    if len(rows) > MAX_ROWS:
        cut = len(rows) - MAX_ROWS + 1
        rows = rows[:MAX_ROWS - 1] + [{"depth": 0, "name": f"… {cut} more layers", "type": "", "shape": "",
                                       "params": 0, "trainable": 0, "code": ""}]
    return {"rows": rows, "total": total, "trainable": trainable}
