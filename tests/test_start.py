"""Start here: a classifier and a generative model on the same labelled points. Only the
generative one can make points; both get close to what the known data allow; the run
resumes exactly. Then the learning path a newcomer walks in the studio: led to this
lesson, trains it to its bar, passes its quiz, is offered the VAE, and reviews its cards
the next day."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict

import torch

from conftest import wait_for_history
from engine.checkpoint import load_checkpoint
from engine.configs.start import StartConfig
from engine.data.classes2d import class_centres, sample_classes
from engine.models.start import ClassMixture, Classifier
from engine.rundir import RunDir, read_history
from engine.runner import Runner
from engine.schema import validate


def write_run(path, **params) -> RunDir:
    cfg = validate(StartConfig, {"train_size": 1000, "steps": 400, **params})
    path.mkdir(parents=True, exist_ok=True)
    rd = RunDir(path)
    rd.write_config("start", asdict(cfg), device="cpu", lesson="start-here")
    return rd


def test_the_data_alternate_classes_around_a_ring():
    x, y = sample_classes(4000, torch.Generator().manual_seed(0), noise=0.1)
    centres = class_centres().float()  # (2, 4, 2)
    nearest = ((x[:, None, None] - centres) ** 2).sum(-1).flatten(1).argmin(1) // 4  # the class of the nearest centre
    assert (nearest == y).float().mean() > 0.99
    assert abs(y.float().mean().item() - 0.5) < 0.05


def test_only_the_mixture_has_a_density_and_makes_points():
    mixture, classifier = ClassMixture(2, 4), Classifier(2, 8)
    x, y = mixture.sample(50, torch.Generator().manual_seed(0))
    assert x.shape == (50, 2) and y.shape == (50,)
    joint = mixture.log_joint(x)  # (50, 2)
    assert torch.allclose(mixture.log_prob(x), torch.logsumexp(joint, 1))
    assert torch.allclose(mixture.posterior(x).exp().sum(1), torch.ones(50))  # Bayes' rule gives a distribution
    assert not hasattr(classifier, "sample") and not hasattr(classifier, "log_prob")


def test_training_nears_the_true_density_and_the_best_accuracy(tmp_path):
    rd = write_run(tmp_path / "run", steps=1000, train_size=2000)  # the defaults
    assert Runner(rd.path).run() == 0
    hist = read_history(rd)
    last = {k: v[-1][1] for k, v in hist.metrics.items()}
    first_gap = hist.metrics["val/gap"][0][1]
    assert first_gap > 0.5 and last["val/gap"] < 0.1, (first_gap, last["val/gap"])  # log p(x) rose to the truth
    assert last["val/log_px"] > hist.metrics["val/log_px"][0][1]
    bayes = last["val/accuracy_bayes"]
    assert last["val/accuracy"] > bayes - 0.03 and last["val/accuracy_generative"] > bayes - 0.03
    assert {"samples", "boundary", "density", "classifier"} <= set(hist.samples)
    panel = json.loads(rd.artifact_path(hist.samples["classifier"]).read_text())
    assert panel["text"].startswith("Nothing to sample")


def test_one_gaussian_per_class_cannot_fit_four_clusters(tmp_path):
    rd = write_run(tmp_path / "run", steps=600, components=1)
    assert Runner(rd.path).run() == 0
    last = {k: v[-1][1] for k, v in read_history(rd).metrics.items()}
    assert last["val/gap"] > 0.5  # what the lesson's "Things to try" says
    assert last["val/accuracy_generative"] < 0.6 < last["val/accuracy"]


def test_stopped_and_continued_equals_never_stopped(tmp_path):
    whole = write_run(tmp_path / "whole")
    assert Runner(whole.path).run() == 0
    half = write_run(tmp_path / "half")
    thread = threading.Thread(target=lambda: (wait_for_history(half, lambda h: h.step >= 50), half.send("stop")))
    thread.start()
    assert Runner(half.path).run() == 0
    thread.join(timeout=10)
    stopped_at = read_history(half).step
    assert 50 <= stopped_at < 400
    assert Runner(half.path, commands_from=half.commands_path.stat().st_size).run() == 0
    a, b = (load_checkpoint(rd.checkpoint_path)["state"] for rd in (whole, half))
    for name in ("classifier", "mixture"):
        assert all(torch.equal(a[name][k], b[name][k]) for k in a[name]), f"{name}, stopped at {stopped_at}"


async def test_a_newcomer_walks_the_path_from_start_here_to_the_vae_and_reviews_the_next_day(home, monkeypatch):
    from studio import review
    from studio.app import GenStudioApp
    from studio.lessons import get_lesson
    from studio.progress import load_progress
    from studio.screens.catalog import CatalogScreen
    from studio.screens.lesson import LessonScreen
    from studio.screens.next_lesson import NextLesson
    from studio.screens.review import ReviewScreen
    from studio.widgets.quiz import QuizPanel

    app = GenStudioApp(graphics="halfblock")
    async with app.run_test(size=(80, 24)) as pilot:
        catalog = app.screen
        assert isinstance(catalog, CatalogScreen)
        assert catalog.current().id == "start-here"  # led to the first lesson, marked next
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LessonScreen) and screen.lesson.id == "start-here"
        screen.params.update({"steps": 600, "train_size": 1000})
        await pilot.press("s")
        deadline = time.monotonic() + 120
        while not load_progress()["lessons"].get("start-here", {}).get("trained") and time.monotonic() < deadline:
            await pilot.pause(0.2)
        assert load_progress()["lessons"]["start-here"]["trained"], "the run never reached the lesson's bar"

        lesson = get_lesson("start-here")
        await pilot.press(str(len(screen.tabs) + 3))  # the Quiz tab: after the dashboard's, Settings and Code
        panel = screen.query_one(QuizPanel)
        for i, q in enumerate(lesson.quiz):
            panel.button_for(i, q.answer).value = True
        panel.query_one("#quiz-check").focus()  # as Tab reaches it at 80x24, below the questions
        await pilot.press("enter")
        await pilot.pause()
        offer = app.screen
        assert isinstance(offer, NextLesson) and offer.upcoming.id == "vae-digits"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, LessonScreen) and app.screen.lesson.id == "vae-digits"
        assert load_progress()["lessons"]["start-here"]["quiz_passed"]
        screen.bridge.run.send("stop")

    # Yesterday the learner reviewed three cards and recalled them; today they are due again,
    # before any new card.
    deck = review.build_deck(review.opened_lessons())
    assert {card.lesson for card in deck} == {"start-here", "vae-digits"}
    yesterday = time.time() - review.DAY - 60
    for card in deck[:3]:
        review.rate(card.id, review.GOOD, now=yesterday)
    app = GenStudioApp(graphics="halfblock", review=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)
        assert [c.id for c in app.screen.due[:3]] == [c.id for c in deck[:3]]
        await pilot.press("space", "3")
        await pilot.pause()
        assert app.screen.reviewed == 1
