"""The style-based generator on tiny CPU configs: shapes, AdaIN, style mixing that really
takes the coarse layers from one w and the fine ones from the other, noise that changes only
the layers it enters, the scores' arithmetic, a short run moving the faces toward the real
ones, exact resume through the runner, requests with error replies, and the Mixing tab."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.configs.stylegan import StyleGANConfig
from engine.models.stylegan import (N_LAYERS, AdaIN, Critic, Generator, StyleGANArgs, broadcast, layers_up_to,
                                    make_noise, mix_styles)
from engine.recipes.base import RunContext
from engine.recipes.stylegan import (MIX_COLS, MIX_ROWS, NOISE_DRAWS, NOISE_ROWS, StyleGANRecipe, frechet_distance,
                                     mixing_agreement)
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import validate

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"width": 4, "critic_width": 4, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "batch_size": 8, "train_size": 256}
ARGS = StyleGANArgs(z_dim=8, w_dim=8, mapping_layers=2, width=4, max_channels=16)


def recipe(**over) -> StyleGANRecipe:
    torch.manual_seed(0)
    return StyleGANRecipe(RunContext(device=torch.device("cpu")), StyleGANConfig(**{**TINY, **over}))


@pytest.fixture(scope="module")
def face_classifier(shared_cache):
    """The real classifier, trained once in the session's shared cache (as test_cwgan does),
    where the recipes under test find it too."""
    from engine.metrics.face_classifier import get_face_classifier

    return get_face_classifier("cpu", cache_dir=shared_cache)


def generator_with_noise() -> Generator:
    """A generator whose noise scales are not zero (they start at zero, as in StyleGAN)."""
    torch.manual_seed(0)
    G = Generator(ARGS).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise.scale"):
                p.fill_(0.5)
    return G


def test_shapes_and_named_finite_losses():
    G, D = Generator(ARGS), Critic(4)
    ws = G.styles(torch.randn(3, 8))
    assert ws.shape == (3, N_LAYERS, 8)
    x = G(ws)
    assert x.shape == (3, 3, 32, 32) and D(x).shape == (3,)
    assert not hasattr(D, "embed")  # the labelled critic's label term is gone
    r = recipe()
    for _ in range(2):
        m = r.train_step()
    assert set(m) == {"train/loss_critic", "train/wasserstein", "train/gp", "train/loss_g"}
    assert all(torch.isfinite(v) for v in m.values())


def test_adain_sets_each_channels_mean_and_spread_from_the_style():
    ada = AdaIN(2, 3)
    with torch.no_grad():
        ada.style.weight.zero_()
        ada.style.bias.copy_(torch.tensor([1.0, -0.5, 3.0, -2.0]))  # y_s - 1 = (1, -0.5), y_b = (3, -2)
    x = torch.randn(4, 2, 8, 8) * 5 + 7
    y = ada(x, torch.randn(4, 3))
    assert torch.allclose(y.mean((2, 3)), torch.tensor([3.0, -2.0]).expand(4, 2), atol=1e-4)
    assert torch.allclose(y.std((2, 3), unbiased=False), torch.tensor([2.0, 0.5]).expand(4, 2), atol=1e-3)


def test_style_mixing_takes_coarse_layers_from_one_w_and_fine_from_the_other():
    G = generator_with_noise()
    w_a, w_b = G.mapping(torch.randn(2, 8)), G.mapping(torch.randn(2, 8))
    noise = make_noise(2, generator=torch.Generator().manual_seed(1))
    crossover = layers_up_to(8)  # 4: the 4x4 and 8x8 layers
    got: list[torch.Tensor] = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: got.append(args[1].detach()))
             for m in G.modules() if isinstance(m, AdaIN)]
    levels: list[torch.Tensor] = []
    hooks += [lvl.register_forward_hook(lambda _m, _a, out: levels.append(out[0].detach())) for lvl in G.levels]
    with torch.no_grad():
        mixed = G(mix_styles(w_a, w_b, crossover), noise)
        mixed_levels, levels[:] = list(levels), []
        pure_a = G(broadcast(w_a), noise)
        a_levels, levels[:] = list(levels), []
        pure_b = G(broadcast(w_b), noise)
    for h in hooks:
        h.remove()
    styles = got[:N_LAYERS]  # the mixed call's eight styles, in layer order
    assert all(torch.equal(styles[i], w_a) for i in range(crossover))
    assert all(torch.equal(styles[i], w_b) for i in range(crossover, N_LAYERS))
    # The 4x4 and 8x8 feature maps are exactly those of face a; the picture is not.
    assert torch.equal(mixed_levels[0], a_levels[0]) and torch.equal(mixed_levels[1], a_levels[1])
    assert not torch.allclose(mixed, pure_a) and not torch.allclose(mixed, pure_b)
    with torch.no_grad():
        assert torch.equal(G(mix_styles(w_a, w_b, N_LAYERS), noise), pure_a)
        assert torch.equal(G(mix_styles(w_a, w_b, 0), noise), pure_b)
    with pytest.raises(ValueError):
        mix_styles(w_a, w_b, N_LAYERS + 1)


def test_noise_changes_only_the_layers_it_enters():
    G = generator_with_noise()
    ws = G.styles(torch.randn(2, 8)).detach()
    fine = range(4, N_LAYERS)  # fresh noise at 16x16 and 32x32 only
    levels: list[torch.Tensor] = []
    hooks = [lvl.register_forward_hook(lambda _m, _a, out: levels.append(out[0].detach())) for lvl in G.levels]
    with torch.no_grad():
        one = G(ws, make_noise(2, generator=torch.Generator().manual_seed(1), layers=fine))
        first, levels[:] = list(levels), []
        two = G(ws, make_noise(2, generator=torch.Generator().manual_seed(2), layers=fine))
        second = list(levels)
        quiet = [G(ws, make_noise(2, layers=range(0))) for _ in range(2)]
    for h in hooks:
        h.remove()
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])  # coarse: untouched
    assert not torch.allclose(first[2], second[2]) and not torch.allclose(one, two)
    assert torch.equal(quiet[0], quiet[1])  # no noise: deterministic
    with torch.no_grad():  # noise scale 0 (a new generator): noise draws change nothing
        fresh = Generator(ARGS).eval()
        assert torch.equal(fresh(ws, make_noise(2, generator=torch.Generator().manual_seed(1))),
                           fresh(ws, make_noise(2, generator=torch.Generator().manual_seed(2))))


def test_training_styles_switch_once_from_the_first_w_to_the_second():
    r = recipe(mixing_prob=1.0)
    with torch.no_grad():
        ws = r.training_styles(64)  # (64, 8, w)
    changes = (ws[:, 1:] != ws[:, :-1]).any(-1).sum(1)  # switches per face
    assert changes.eq(1).all()
    r.set_live("mixing_prob", 0.0)
    with torch.no_grad():
        ws = r.training_styles(16)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_the_scores_arithmetic():
    t = torch.tensor
    coarse = {"glasses": t([0, 0, 1, 1]), "hair": t([0, 1, 2, 3]), "smiling": t([0, 0, 0, 0]), "hat": t([1, 1, 0, 0])}
    fine = {"glasses": t([1, 1, 0, 1]), "hair": t([1, 1, 3, 3]), "smiling": t([0, 0, 0, 0]), "hat": t([0, 0, 1, 1])}
    mix = {"glasses": t([0, 1, 1, 1]), "hair": t([1, 1, 3, 3]), "smiling": t([1, 1, 1, 1]), "hat": t([1, 1, 0, 1])}
    agree = mixing_agreement(coarse, fine, mix)
    assert agree["glasses"] == (pytest.approx(2 / 3), pytest.approx(1 / 3), 3)  # 3 pairs differ
    assert agree["hair"] == (0.0, 1.0, 2) and agree["hat"] == (0.75, 0.25, 4)
    assert agree["smiling"][2] == 0  # the sources never differ: nothing to say
    # Fréchet distance: 0 for the same set; for Gaussians with covariances I and 4I in D
    # dimensions and means 3 apart along one axis: 9 + D + 4D - 2 tr(2I) = 9 + D.
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    b = 2 * torch.randn(20000, 3, generator=g, dtype=torch.float64) + torch.tensor([3.0, 0, 0], dtype=torch.float64)
    assert frechet_distance(a, b) == pytest.approx(12.0, rel=0.03)


def test_a_short_run_moves_the_faces_toward_the_real_ones():
    """After 60 steps the generated faces' colour statistics (per-channel mean and spread
    over pixels and faces) are far closer to the real faces' than at the start (measured:
    0.80 -> 0.13), and the critic scores real faces above generated ones."""
    r = recipe(lr=2e-3)
    real = r.images.float().div(255)

    def distance() -> float:
        fake = r.sample_images(128, torch.Generator().manual_seed(0))
        stats = lambda x: torch.cat([x.mean((0, 2, 3)), x.std((0, 2, 3))])  # noqa: E731
        return (stats(fake) - stats(real)).abs().sum().item()

    before = distance()
    gaps = [float(r.train_step()["train/wasserstein"]) for _ in range(60)]
    after = distance()
    assert after < 0.4 * before, (before, after)
    assert sum(gaps[-20:]) / 20 > 0.5, gaps


def test_views_have_their_layout(face_classifier):
    r = recipe()
    arts = {a.name: a for a in r.samples()}
    assert set(arts) == {"samples", "mixing", "noise"}
    assert arts["samples"].data.shape == (8 * 34 + 2, 8 * 34 + 2, 3)
    assert arts["mixing"].data.shape == ((MIX_ROWS + 1) * 34 + 2, (MIX_COLS + 1) * 34 + 2, 3)
    assert arts["noise"].data.shape == (NOISE_ROWS * 34 + 2, (NOISE_DRAWS + 2) * 34 + 2, 3)
    assert "layers up to 8x8" in arts["mixing"].caption and "no noise" in arts["noise"].caption
    r.set_live("coarse", "16x16")
    assert "layers up to 16x16" in r.samples()[1].caption
    scores = r.evaluate()
    assert scores["quality/feature_distance"] > 0
    assert 0.0 <= scores.get("quality/hat_coarse", 0.0) <= 1.0


def write_run(path, **params) -> RunDir:
    cfg = validate(StyleGANConfig, {**TINY, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("stylegan", asdict(cfg), device="cpu", lesson="stylegan-faces")
    return rd


def test_runner_trains_and_resumes_exactly(tmp_path, face_classifier):
    whole = write_run(tmp_path / "whole", steps=8)
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half", steps=4)
    assert Runner(half.path).run() == 0
    cfg = half.read_config()
    cfg["params"]["steps"] = 8
    half.write_config("stylegan", cfg["params"], device="cpu", lesson="stylegan-faces")
    assert Runner(half.path).run() == 0
    a, b = (load_checkpoint(rd.checkpoint_path)["state"] for rd in (whole, half))
    for part in ("G", "D", "ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    hist = read_history(half)
    assert hist.state == "finished" and "quality/feature_distance" in hist.metrics


def test_requests_and_pickers_are_answered_and_bad_ones_get_error_replies(tmp_path, face_classifier):
    rd = write_run(tmp_path / "run", steps=2)

    def answers(name):
        return [e.payload for e in rd.events() if e.type == "sample" and e.payload["name"] == name]

    def drive():
        deadline = time.monotonic() + 60
        try:
            while read_history(rd).state != "finished" and time.monotonic() < deadline:
                time.sleep(0.05)
            rd.send("interact", name="mix", reply="mixing", face_set=7, coarse="4x4", request=1)
            rd.send("interact", name="mix", reply="mixing", face_set=2, coarse="2x2", request=2)
            rd.send("interact", name="mix", reply="mixing", face_set="many", request=3)
            rd.send("interact", name="blend", reply="mixing", request=4)
            rd.send("set", key="noise_in", value="16x16-32x32")  # a picker on the Noise tab
            rd.send("sample")
            while (len(answers("mixing.error")) < 3 or not any("layers 16x16-32x32" in a["caption"]
                                                               for a in answers("noise"))) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rd.send("stop")

    thread = threading.Thread(target=drive)
    thread.start()
    assert Runner(rd.path, serve=60).run() == 0
    thread.join(timeout=10)
    good = [a for a in answers("mixing") if "-r1-" in a["path"]]
    assert good and good[-1]["kind"] == "image" and "layers up to 4x4" in good[-1]["caption"]
    errors = {a["path"].split("-r")[1][0]: json.loads((rd.path / a["path"]).read_text())["error"]
              for a in answers("mixing.error")}
    assert "coarse must be one of" in errors["2"]
    assert "face_set must be a whole number" in errors["3"]
    assert "no 'blend' action" in errors["4"]
    assert any("layers 16x16-32x32" in a["caption"] for a in answers("noise"))


async def test_the_mixing_tab_shows_its_pickers_and_grid_at_80x24(tmp_path):
    from textual.widgets import Select

    from conftest import open_tab, stopped_run, wait_for
    from studio.app import GenStudioApp
    from studio.widgets.image_view import ImageView

    rd = stopped_run(tmp_path / "faces", "stylegan", "stylegan-faces",
                     image=("mixing", MIX_ROWS + 1, MIX_COLS + 1,
                            "rows: coarse styles (layers up to 8x8) · columns: fine styles"))
    app = GenStudioApp(graphics="halfblock", attach=str(rd.path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_tab(pilot, "2")
        view = screen.query_one("#mixing", ImageView)
        await wait_for(pilot, lambda: view.path is not None and view.path.endswith("mixing-00000010.png"),
                       timeout=10, what="the grid loaded")
        assert "layers up to 8x8" in view.caption
        assert screen.query_one("#ctl-coarse", Select).value == "8x8"
        assert view.region.height >= 4  # the grid has room under the pickers
