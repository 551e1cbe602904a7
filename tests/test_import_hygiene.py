"""The boundary, enforced: the UI process never imports torch; the engine never imports
textual, rich or studio."""

import subprocess
import sys

from conftest import ROOT

UI_MODULES = [
    "studio.app", "studio.cli", "studio.bridge", "studio.headless", "studio.lessons", "studio.progress",
    "studio.screens.catalog", "studio.screens.lesson", "studio.screens.runs",
    "studio.widgets.curves", "studio.widgets.image_view", "studio.widgets.hyperparams",
    "studio.widgets.quiz", "studio.widgets.code_view", "studio.widgets.latent_map", "studio.widgets.status_line",
]
ENGINE_MODULES = [
    "engine.runner", "engine.recipes.vae", "engine.models.vae", "engine.data.digits", "engine.data.images",
    "engine.metrics.digit_classifier", "engine.checkpoint", "engine.sample", "engine.launch", "engine.rundir",
    "engine.data.toy2d", "engine.metrics.distance2d", "engine.data.faces", "engine.metrics.face_classifier",
    "engine.recipes.gan2d", "engine.cachetools",
]


def _modules_after(imports: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in imports) + "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_studio_never_imports_torch():
    loaded = _modules_after(UI_MODULES)
    assert "torch" not in loaded
    assert not any(m.startswith("torch.") for m in loaded)


def test_engine_never_imports_ui():
    loaded = _modules_after(ENGINE_MODULES)
    for banned in ("textual", "rich", "studio", "plotext", "textual_image"):
        assert banned not in loaded, banned
        assert not any(m.startswith(banned + ".") for m in loaded), banned


def test_engine_source_has_no_ui_imports():
    bad = []
    for path in (ROOT / "engine").rglob("*.py"):
        for line in path.read_text().splitlines():
            s = line.strip()
            if s.startswith(("import textual", "from textual", "import studio", "from studio", "import rich", "from rich")):
                bad.append(f"{path}: {s}")
    assert not bad
