"""Measure what each lesson's "Things to try" says will happen (issue 12: every suggestion
must do what its text says; the figures the texts quote come from here).

Every suggestion below is one headless engine run, started as the studio starts it (its own
process, the runner's views and scores), with the suggestion's settings at the start or
sent live at a step, as a learner would in the Settings tab. Some runs end with probes:
once training has finished the engine keeps serving its views (as for the studio's
pickers), and each probe sets live values and asks for the views again, as a learner
changing guidance or sampler steps on a finished run does. Printed for each: the claim the
lesson makes, and the figures read from the run's own event log and views.

Runs use one CPU thread each (OMP_NUM_THREADS=1); --jobs runs that many at once (2 on a
2-core machine). Figures here are about what training does, not speed; timings that are
printed are wall seconds of a probe on a machine that may be busy.

    python benchmarks/things_to_try.py --list
    python benchmarks/things_to_try.py [--jobs 2] [--out results.jsonl] [LESSON | LESSON:NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from common import fresh_home, wait_for

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Try:
    lesson: str
    name: str
    claim: str
    sets: list[str] = field(default_factory=list)
    steps: int | None = None  # None: the preset's
    live: list[tuple[int, str, object]] = field(default_factory=list)  # (at step, key, value)
    probes: list[tuple[str, dict]] = field(default_factory=list)  # after training: (label, live values)
    figures: Callable[["Result"], dict] | None = None


@dataclass
class Result:
    history: object  # engine.rundir.History at the end of training, before any probe
    probes: dict  # label -> {"metrics": {...}, "texts": {view name: text}, "seconds": float}
    set_at: dict  # key=value -> the step the engine applied it at
    wall: float
    path: object  # the run directory


# -- reading a run's figures --------------------------------------------------------------

def series(r: Result, key: str, a: int = 0, b: int = 10**12) -> list[float]:
    return [v for s, v in r.history.metrics.get(key, []) if a <= s <= b]


def at(r: Result, key: str, step: int = 10**12) -> float:
    """The metric's last value at or before ``step``."""
    pts = series(r, key, 0, step)
    return pts[-1] if pts else float("nan")


def last(r: Result, key: str) -> float:
    return at(r, key)


def mean(r: Result, key: str, a: int, b: int) -> float:
    pts = series(r, key, a, b)
    return sum(pts) / len(pts) if pts else float("nan")


def peak(r: Result, key: str, a: int, b: int) -> float:
    pts = series(r, key, a, b)
    return max(pts) if pts else float("nan")


def lowest(r: Result, key: str, a: int = 0, b: int = 10**12) -> float:
    pts = series(r, key, a, b)
    return min(pts) if pts else float("nan")


def final(*keys: str) -> Callable[[Result], dict]:
    """The last value of each metric (quality scores come from the final views)."""
    return lambda r: {k: last(r, k) for k in keys}


def ending(*keys: str, steps: int = 300) -> Callable[[Result], dict]:
    """The mean of each (noisy, per-batch) metric over the run's last ``steps`` steps."""
    return lambda r: {f"{k} (mean of the last {steps} steps)": mean(r, k, r.history.step - steps, r.history.step)
                      for k in keys}


def probed(key: str) -> Callable[[Result], dict]:
    return lambda r: {f"{label}: {key}": p["metrics"].get(key, float("nan")) for label, p in r.probes.items()}


def both(*fs: Callable[[Result], dict]) -> Callable[[Result], dict]:
    return lambda r: {k: v for f in fs for k, v in f(r).items()}


def longest_repeat(text: str) -> int:
    """Length of the longest stretch of text that appears at least twice (a loop shows
    as a long one)."""
    best = 0
    for n in range(8, len(text) // 2 + 1, 4):
        seen = set()
        if not any((text[i:i + n] in seen) or seen.add(text[i:i + n]) for i in range(len(text) - n + 1)):
            break
        best = n
    return best


# -- the suggestions ----------------------------------------------------------------------

VAE_Q = ("quality/recognisability", "quality/coverage", "val/recon", "val/kl")
DCGAN_Q = ("quality/recognisability", "quality/coverage", "quality/near_duplicates")
CWGAN_Q = ("quality/glasses", "quality/hair", "quality/smiling", "quality/hat", "train/wasserstein")
CYCLE_Q = ("quality/to_black", "quality/to_blond", "quality/cycle_error", "quality/kept", "train/identity")
DIFF_Q = ("quality/recognisability", "quality/coverage")
SAMPLERS = [(f"sampler_steps={n}", {"sampler_steps": n}) for n in (10, 25, 50)]


def vae_lr(r: Result) -> dict:
    (up, high), down = next((s, k) for k, s in r.set_at.items() if k != "lr=0.002"), r.set_at.get("lr=0.002", 0)
    return {"batch loss before (mean of 200 steps)": mean(r, "train/loss", up - 200, up),
            f"peak while {high}": peak(r, "train/loss", up, down),
            f"mean while {high}": mean(r, "train/loss", up, down),
            "mean of the first 100 steps back at 2e-3": mean(r, "train/loss", down, down + 100),
            "mean of the last 100 steps": mean(r, "train/loss", r.history.step - 100, r.history.step),
            "recognisability just before the rise": at(r, "quality/recognisability", up),
            "lowest recognisability after it": lowest(r, "quality/recognisability", up),
            "state": r.history.state, **final(*VAE_Q)(r)}


def gan2d_modes(r: Result) -> dict:
    d, g, b = (r.set_at.get(k, 0) for k in ("step_mode=discriminator", "step_mode=generator", "step_mode=both"))
    return {"d_real before D-only": mean(r, "train/d_real", d - 100, d), "d_real end of D-only": mean(r, "train/d_real", g - 100, g),
            "d_fake before D-only": mean(r, "train/d_fake", d - 100, d), "d_fake end of D-only": mean(r, "train/d_fake", g - 100, g),
            "distance before D-only": at(r, "quality/sliced_wasserstein", d),
            "distance at end of G-only": at(r, "quality/sliced_wasserstein", b),
            "worst distance during G-only": peak(r, "quality/sliced_wasserstein", g, b),
            "distance at the end (both again)": last(r, "quality/sliced_wasserstein")}


def trained_recipe(r: Result, untrained: bool = False, need_data: bool = False):
    """The run's recipe with its last checkpoint loaded, in this process (or, untrained,
    freshly initialised with the same settings: a floor to compare with)."""
    import torch

    from engine.checkpoint import load_checkpoint, restore
    from engine.recipes import build_recipe
    from engine.recipes.base import RunContext
    from engine.rundir import RunDir

    rd = RunDir(r.path)
    ck = load_checkpoint(rd.checkpoint_path, map_location="cpu")
    recipe = build_recipe(rd.read_config()["recipe"], ck["params"], RunContext(torch.device("cpu"), log=lambda m: None, need_data=need_data))
    if not untrained:
        restore(recipe, ck["state"])
    return recipe


def step_cpu_ms(r: Result, steps: int = 30) -> dict:
    """CPU milliseconds of one training step of the run's settings, timed in this thread
    on one torch thread after three warm-up steps (thread CPU time: what other programs on
    the machine do hardly changes it, unlike the wall clock)."""
    import torch

    from engine.recipes import build_recipe
    from engine.recipes.base import RunContext
    from engine.rundir import RunDir

    torch.set_num_threads(1)
    cfg = RunDir(r.path).read_config()
    recipe = build_recipe(cfg["recipe"], cfg["params"], RunContext(torch.device("cpu")))
    for _ in range(3):
        recipe.train_step()
    t0 = time.thread_time()
    for _ in range(steps):
        recipe.train_step()
    return {"CPU ms per step (one thread)": 1000 * (time.thread_time() - t0) / steps}


def translator_mistakes(r: Result) -> dict:
    """The checkpoint's greedy translations of all 500 held-out pairs: exact match, and the
    first mistakes (output | reference)."""
    recipe = trained_recipe(r, need_data=True)
    pairs = recipe.heldout
    src, tgt = recipe._tensors(pairs)
    recipe.model.eval()
    outputs = recipe.translate_batch(src, max_len=tgt.shape[1])
    wrong = [(o, fr) for o, (_, fr) in zip(outputs, pairs) if o != fr]
    return {"exact match on all held-out pairs": 1 - len(wrong) / len(pairs),
            **{f"mistake {i + 1}": f"{o} | {fr}" for i, (o, fr) in enumerate(wrong[:12])}}


def gan2d_points(r: Result, n: int = 4000):
    import torch

    recipe = trained_recipe(r)
    return recipe.generate(torch.randn(n, recipe.cfg.noise_dim, generator=torch.Generator().manual_seed(1)))


def clusters_found(r: Result) -> dict:
    """Of the eight Gaussians (centres on a circle of radius 2), how many hold at least 3%
    of 4,000 generated points within 0.5 of their centre, and the share of points near none."""
    import math

    import torch

    pts = gan2d_points(r)
    centres = torch.tensor([[2 * math.cos(2 * math.pi * i / 8), 2 * math.sin(2 * math.pi * i / 8)] for i in range(8)])
    d = torch.cdist(pts, centres)
    near = d.min(dim=1)
    counts = torch.bincount(near.indices[near.values < 0.5], minlength=8)
    return {"quality/sliced_wasserstein": last(r, "quality/sliced_wasserstein"),
            "clusters holding >= 3% of the points": int((counts >= 0.03 * len(pts)).sum()),
            "points between clusters (> 0.5 from every centre)": float((near.values >= 0.5).float().mean())}


def ring_round(r: Result) -> dict:
    """How far round the ring the generated points go: of 36 angle bins, how many hold at
    least 0.5% of 4,000 points, and the share of points off the ring (radius outside 1.5-2.5)."""
    import torch

    pts = gan2d_points(r)
    angle = torch.atan2(pts[:, 1], pts[:, 0])
    bins = torch.bincount(((angle + torch.pi) / (2 * torch.pi) * 36).long().clamp(0, 35), minlength=36)
    radius = pts.norm(dim=1)
    return {"quality/sliced_wasserstein": last(r, "quality/sliced_wasserstein"),
            "lowest distance in the run": lowest(r, "quality/sliced_wasserstein"),
            "angle bins of 36 covered": int((bins >= 0.005 * len(pts)).sum()),
            "points off the ring": float(((radius < 1.5) | (radius > 2.5)).float().mean())}


def face_distance(r: Result, n: int = 256) -> dict:
    """Do the faces look like faces? The StyleGAN lesson's score, the Fréchet distance in the
    face classifier's features, of n generated faces (random labels) against faces drawn as
    the training set is; with, as references, real held-out faces (0 but for sampling) and
    an untrained generator of the same recipe."""
    import torch

    from engine.data.faces import make_faces
    from engine.metrics.face_classifier import get_face_classifier
    from engine.recipes.stylegan import classifier_features, frechet_distance

    clf = get_face_classifier("cpu", log=lambda m: None)
    recipe = trained_recipe(r)
    ref = classifier_features(clf, make_faces(n, recipe.cfg.seed, 32)[0].float().div(255))
    fd = lambda faces: frechet_distance(ref, classifier_features(clf, faces))  # noqa: E731
    out = {"feature_distance: generated": fd(recipe.sample_images(n, torch.Generator().manual_seed(5)))}
    out["feature_distance: real held-out faces"] = fd(make_faces(n, 777, 32)[0].float().div(255))
    out["feature_distance: untrained generator"] = fd(trained_recipe(r, untrained=True).sample_images(
        n, torch.Generator().manual_seed(5)))
    return out


def gpt_greedy(r: Result) -> dict:
    out = {"val/loss": last(r, "val/loss"), "val/bpc": last(r, "val/bpc")}
    for label, p in r.probes.items():
        text = p["texts"].get("sample", "")
        out[f"{label}: longest repeated stretch (chars of {len(text)})"] = longest_repeat(text)
        out[f"{label}: text"] = text[:160]
    return out


TRIES = [
    # VAE (assets/lessons/vae-digits.md)
    Try("vae-digits", "default", "the reference the others are compared with", figures=final(*VAE_Q)),
    Try("vae-digits", "beta0", "crisp reconstructions (lower recon), smudged samples; recognisability usually drops",
        ["beta=0"], figures=final(*VAE_Q)),
    Try("vae-digits", "beta4", "higher recon, blurrier digits", ["beta=4"], figures=final(*VAE_Q)),
    Try("vae-digits", "latent2", "the map is the latent space; blurrier images", ["latent_dim=2"], figures=final(*VAE_Q)),
    Try("vae-digits", "lr-live", "lr 1e-2 at step 1,500 for 300 steps: the loss spikes and the samples smudge; back "
        "at 2e-3 they recover over the remaining 700 steps; the run does not fail",
        live=[(1500, "lr", 0.01), (1800, "lr", 0.002)], figures=vae_lr),
    Try("vae-digits", "lr-live-5e-3", "a milder rise: 5e-3 for 300 steps makes the curves noisier",
        live=[(1500, "lr", 0.005), (1800, "lr", 0.002)], figures=vae_lr),
    # A GAN learns a shape (gan-shape.md)
    Try("gan-shape", "modes", "D only: d_real up, d_fake down; then G only: distance may get worse; both recovers",
        live=[(2000, "step_mode", "discriminator"), (2500, "step_mode", "generator"), (3000, "step_mode", "both")],
        figures=gan2d_modes),
    Try("gan-shape", "ring", "the ring with the defaults (reference)", ["shape=ring"], figures=ring_round),
    Try("gan-shape", "ring-lr_d-10x", "D ahead, distances close to the default's", ["shape=ring", "lr_d=3e-3"],
        figures=ring_round),
    Try("gan-shape", "ring-lr_g-10x", "distance never comes down", ["shape=ring", "lr_g=3e-3"], figures=ring_round),
    Try("gan-shape", "gaussians", "all eight clusters, distance stalls near 0.1", ["shape=gaussians"],
        figures=clusters_found),
    Try("gan-shape", "gaussians-lr_g-high", "one run collapsed onto two clusters", ["shape=gaussians", "lr_g=3e-3"],
        figures=clusters_found),
    Try("gan-shape", "ring-noise1", "usually still goes round, with a seam", ["shape=ring", "noise_dim=1"],
        figures=ring_round),
    # DCGAN (dcgan-digits.md)
    Try("dcgan-digits", "default", "reference", figures=both(final(*DCGAN_Q), ending("train/d_real", "train/d_fake"))),
    Try("dcgan-digits", "lr_d-10x", "D ahead: d_real up, d_fake down, G learns slowly", ["lr_g=1e-4"],
        figures=both(final(*DCGAN_Q), ending("train/d_real", "train/d_fake"))),
    Try("dcgan-digits", "lr_g-10x", "tiles may snap to the same few shapes", ["lr_d=1e-4"], figures=both(final(*DCGAN_Q), ending("train/d_real", "train/d_fake"))),
    Try("dcgan-digits", "lower-both", "steadier but needs more steps", ["lr_g=2e-4", "lr_d=2e-4"],
        figures=both(final(*DCGAN_Q), ending("train/d_real", "train/d_fake"))),
    Try("dcgan-digits", "noise2", "how much variety survives two numbers", ["noise_dim=2"], figures=both(final(*DCGAN_Q), ending("train/d_real", "train/d_fake"))),
    # Conditional WGAN-GP (cgan-faces.md)
    Try("cgan-faces", "default", "reference; then an unlikely mix in the picker",
        probes=[("red+glasses+hat", {"pick_hair": "red", "pick_glasses": "yes", "pick_hat": "yes"})],
        figures=both(final(*CWGAN_Q), face_distance, step_cpu_ms, lambda r: {f"{k}: caption": v for k, p in r.probes.items()
                                                 for n, v in p["captions"].items() if n == "picked"})),
    Try("cgan-faces", "gp0", "nothing bounds the critic's scores: watch wasserstein and the faces", ["gp_weight=0"],
        figures=both(final(*CWGAN_Q), lambda r: {"largest |wasserstein|": max(map(abs, series(r, "train/wasserstein")), default=0)})),
    Try("cgan-faces", "critic5", "slower per step; accuracy per generator step?", ["critic_steps=5"],
        figures=both(final(*CWGAN_Q), step_cpu_ms)),
    # CycleGAN (cyclegan-hair.md)
    Try("cyclegan-hair", "default", "reference", figures=final(*CYCLE_Q)),
    Try("cyclegan-hair", "identity0", "the identity curve rises", ["lambda_identity=0"], figures=final(*CYCLE_Q)),
    Try("cyclegan-hair", "cycle0", "cycle_error 0.07-0.09 within 100 steps (0.015 with it), kept 0.75-0.8",
        ["lambda_cycle=0"], figures=both(final(*CYCLE_Q), lambda r: {"cycle_error by step 100": at(r, "quality/cycle_error", 100),
                                                                     "kept, lowest": lowest(r, "quality/kept")})),
    Try("cyclegan-hair", "cycle50", "the hair change may turn timid: to_black lower", ["lambda_cycle=50"],
        figures=final(*CYCLE_Q)),
    Try("cyclegan-hair", "lr-10x", "hair scores swing harder", ["lr=5e-3"],
        figures=both(final(*CYCLE_Q), lambda r: {"to_black range": (lowest(r, "quality/to_black"), peak(r, "quality/to_black", 0, 10**9))})),
    # GPT (gpt-from-scratch.md)
    Try("gpt-from-scratch", "default", "top_k=1 is greedy decoding: it soon loops",
        probes=[("temperature=0.8", {}), ("top_k=1", {"top_k": 1})], figures=gpt_greedy),
    Try("gpt-from-scratch", "word", "compare bits per character with char", ["tokenizer=word"],
        figures=final("val/loss", "val/bpc")),
    # Translator (translator-en-fr.md)
    Try("translator-en-fr", "default", "reference; beam 4 against greedy",
        probes=[("beam=1", {"beam": 1}), ("beam=4", {"beam": 4})],
        figures=both(final("quality/exact_match", "train/loss"), step_cpu_ms, probed("quality/exact_match"))),
    Try("translator-en-fr", "train1000", "train loss ~0, held-out exact match 0.95 at 1,500 steps", ["train_size=1000"],
        figures=both(final("quality/exact_match", "val/loss"), translator_mistakes, lambda r: {"train/loss (mean of the last 100 steps)": mean(r, "train/loss", r.history.step - 100, r.history.step)})),
    Try("translator-en-fr", "layers1", "0.99 at step 1,000, steps about twice as fast", ["layers=1"],
        figures=both(final("quality/exact_match"), step_cpu_ms,
                     lambda r: {"exact_match by step 1,000": at(r, "quality/exact_match", 1000)})),
    # Diffusion (diffusion-digits.md): all at 2,000 steps, so the figures compare
    Try("diffusion-digits", "v", "the default prediction (reference), with 10/25/50 DDIM steps",
        steps=2000, probes=SAMPLERS, figures=both(final(*DIFF_Q), probed("quality/recognisability"))),
    Try("diffusion-digits", "eps", "learns more slowly than v", ["prediction=eps"], steps=2000, probes=SAMPLERS,
        figures=both(final(*DIFF_Q), probed("quality/recognisability"))),
    Try("diffusion-digits", "eps-cosine", "learned more slowly than linear (eps)", ["prediction=eps", "schedule=cosine"],
        steps=2000, figures=final(*DIFF_Q)),
    Try("diffusion-digits", "eps-ema0", "raw weights score below the average", ["prediction=eps", "ema_decay=0"],
        steps=2000, figures=final(*DIFF_Q)),
    Try("diffusion-digits", "eps-lr4e-3", "lr 0.004 scores below 0.001", ["prediction=eps", "lr=0.004"], steps=2000,
        figures=final(*DIFF_Q)),
    Try("diffusion-digits", "toy2d", "learns the moons within seconds", ["dataset=toy2d"], steps=2000,
        figures=lambda r: {"sliced_wasserstein": series(r, "quality/sliced_wasserstein"),
                           "steps/s": r.history.status.get("steps_per_s", float("nan"))}),
    # Prompt to image (text-to-image.md)
    Try("text-to-image", "default", "guidance 0 ~chance; 7.5 burns colours; 25 DDIM steps no better than 10",
        probes=[("guidance=2", {}), ("guidance=0", {"guidance": 0}), ("guidance=7.5", {"guidance": 7.5}),
                ("guidance=2 sampler_steps=25", {"guidance": 2, "sampler_steps": 25})],
        figures=lambda r: {f"{label}: {k.split('/')[1]}": round(v, 2) for label, p in r.probes.items()
                           for k, v in p["metrics"].items() if k.startswith("quality/")}
        | {f"{label}: view seconds": round(p["seconds"], 1) for label, p in r.probes.items()}),
]


# -- running ------------------------------------------------------------------------------

def execute(t: Try, say):
    from engine.launch import start_engine
    from engine.rundir import read_history
    from engine.runs import create_run
    from studio.lessons import get_lesson  # (torch-free: the lesson's front matter)

    rd = create_run(get_lesson(t.lesson).recipe, t.sets, t.steps, "cpu", None)
    launch = time.monotonic()
    proc = start_engine(rd.path, env=ONE_THREAD, serve=600 if t.probes else 0)
    pending = list(t.live)
    set_at: dict[str, int] = {}
    probes: dict[str, dict] = {}
    try:
        def trained():
            h = read_history(rd)
            while pending and h.step >= pending[0][0] and h.state == "running":
                _, key, value = pending.pop(0)
                rd.send("set", key=key, value=value)
            for ev in rd.events():
                if ev.type == "param":
                    set_at.setdefault(f"{ev.payload['key']}={ev.payload['value']}", ev.step)
            if h.state in ("failed", "stopped"):
                return h
            return h if h.state == "finished" else None
        h = wait_for(trained, timeout=3 * 3600, interval=0.5)
        say(f"{t.lesson}:{t.name} trained: {h.step:,} steps, {h.state}, {time.monotonic() - launch:.0f} s")
        for label, values in t.probes if h.state == "finished" else []:
            n_metric = sum(1 for ev in rd.events() if ev.type == "metric")
            for key, value in values.items():
                rd.send("set", key=key, value=value)
            t0 = time.monotonic()
            rd.send("sample")

            def answered():
                evs = list(rd.events())
                metrics = [ev for ev in evs if ev.type == "metric"]
                return metrics[n_metric:] and evs
            evs = wait_for(answered, timeout=1800, interval=0.2)
            seconds = time.monotonic() - t0
            hp = read_history(rd)
            texts, captions = {}, dict(hp.captions)
            for name, rel in hp.samples.items():
                if rel.endswith(".json"):
                    try:
                        data = json.loads((rd.path / rel).read_text())
                    except (OSError, ValueError):
                        continue
                    if isinstance(data, dict) and isinstance(data.get("text"), str):
                        texts[name] = data["text"]
            metrics = {}
            for ev in [ev for ev in evs if ev.type == "metric"][n_metric:]:
                metrics.update(ev.payload)
            probes[label] = {"metrics": metrics, "texts": texts, "captions": captions, "seconds": seconds}
    finally:
        rd.send("stop")
        proc.wait(timeout=300)
    return Result(h, probes, set_at, time.monotonic() - launch, rd.path), rd


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("only", nargs="*", help="LESSON or LESSON:NAME (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once, one CPU thread each (default 2)")
    ap.add_argument("--out", help="append each result as a JSON line to this file")
    ap.add_argument("--list", action="store_true", help="list the suggestions and exit")
    args = ap.parse_args()
    chosen = [t for t in TRIES if not args.only or t.lesson in args.only or f"{t.lesson}:{t.name}" in args.only]
    if args.list or not chosen:
        for t in TRIES:
            print(f"{t.lesson}:{t.name:<22} {' '.join(t.sets) or '(defaults)'}  -- {t.claim}")
        return 0 if chosen else 2
    fresh_home()
    lock = threading.Lock()

    def say(msg: str) -> None:
        with lock:
            print(msg, flush=True)

    def one(t: Try):
        try:
            result, rd = execute(t, say)
            figs = t.figures(result) if t.figures else {}
        except Exception as e:  # one failed suggestion must not lose the others' figures
            figs, rd = {"error": f"{type(e).__name__}: {e}"}, None
            result = None
        lines = [f"== {t.lesson}:{t.name}  sets: {' '.join(t.sets) or '(defaults)'}"
                 + (f"  live: {t.live}" if t.live else ""),
                 f"   claim: {t.claim}"]
        if result is not None:
            lines.append(f"   run: {rd.path.name}, {result.history.step:,} steps, {result.history.state}, "
                         f"{result.wall:.0f} s wall" + (f", set at steps {result.set_at}" if result.set_at else ""))
        lines += [f"   {k}: {fmt(v)}" for k, v in figs.items()]
        say("\n".join(lines))
        if args.out:
            with lock, open(args.out, "a") as f:
                f.write(json.dumps({"try": f"{t.lesson}:{t.name}", "sets": t.sets, "figures": figs}, default=str) + "\n")

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
