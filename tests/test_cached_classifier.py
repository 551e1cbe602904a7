"""The cache of scoring classifiers (engine/metrics/cached.py)."""

import pytest
import torch
import torch.nn as nn

from engine.metrics.cached import cached_classifier, fit_classifier


def tiny_train() -> nn.Module:
    model = nn.Linear(2, 2)
    x, y = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 2
    fit_classifier(model, 64, 1, 1e-2, lambda idx: nn.functional.cross_entropy(model(x[idx]), y[idx]),
                   torch.Generator().manual_seed(1), lambda _: None, batch=16)
    model.heldout_accuracy = 0.5
    return model


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_a_classifier_first_needed_inside_a_view_still_trains(tmp_path, mode):
    """StyleGAN's first views asked for the face classifier under inference_mode; on a
    machine with none cached its training failed: "element 0 of tensors does not require grad"."""
    with getattr(torch, mode)():
        model = cached_classifier(tmp_path / "judge.pt", lambda: nn.Linear(2, 2), tiny_train)
    assert (tmp_path / "judge.pt").exists() and not model.training
    again = cached_classifier(tmp_path / "judge.pt", lambda: nn.Linear(2, 2), lambda: pytest.fail("trained twice"))
    assert torch.equal(again.weight, model.weight.detach())
