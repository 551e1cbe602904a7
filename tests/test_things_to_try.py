"""benchmarks/things_to_try.py measures what the lessons' "Things to try" promise. Its table
must stay runnable as recipes change: every suggestion names a lesson that exists, settings
its recipe accepts, and live changes only to settings that apply live."""

import importlib.util
import sys

import pytest

from engine.registry import get_config_class
from engine.schema import parse_assignments, specs, validate
from studio.lessons import get_lesson

from conftest import ROOT


@pytest.fixture(scope="module")
def things():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # its `from common import ...`
    try:
        spec = importlib.util.spec_from_file_location("things_to_try", ROOT / "benchmarks" / "things_to_try.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["things_to_try"] = module  # (its dataclasses look themselves up there)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("things_to_try", None)
        sys.path.remove(str(ROOT / "benchmarks"))


def test_every_suggestion_is_a_valid_run_of_its_lesson(things):
    seen = set()
    for t in things.TRIES:
        assert (t.lesson, t.name) not in seen, t.name
        seen.add((t.lesson, t.name))
        recipe = get_lesson(t.lesson).recipe
        config = get_config_class(recipe)
        validate(config, parse_assignments(list(t.sets)))  # raises on a setting the recipe refuses
        live = {s.name for s in specs(config) if s.live}
        changed = [key for _, key, _ in t.live] + [key for _, values in t.probes for key in values]
        assert set(changed) <= live, (t.name, set(changed) - live)
        assert [at for at, _, _ in t.live] == sorted(at for at, _, _ in t.live)
        assert t.figures is not None, t.name
    # The lessons whose suggestions this measures, each with its reference run.
    for lesson in ("vae-digits", "gan-shape", "dcgan-digits", "cgan-faces", "cyclegan-hair", "gpt-from-scratch",
                   "translator-en-fr", "diffusion-digits", "text-to-image"):
        assert any(t.lesson == lesson for t in things.TRIES), lesson


def test_a_loop_shows_as_a_long_repeat(things):
    assert things.longest_repeat("the class of the class of the class of the class of") >= 24
    assert things.longest_repeat("abcdefghijklmnopqrstuvwxyz0123456789") == 0
