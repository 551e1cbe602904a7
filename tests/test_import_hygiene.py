"""The boundary, enforced: the UI process never imports torch; the engine never imports
textual, rich or studio."""

import subprocess
import sys

from conftest import ROOT

def _package_modules(package: str) -> list[str]:
    """Every module of a package, found on disk, so a new module is checked without a list
    to update."""
    return sorted(".".join(path.relative_to(ROOT).with_suffix("").parts)
                  for path in (ROOT / package).rglob("*.py")
                  if path.name not in ("__init__.py", "__main__.py"))


UI_MODULES = _package_modules("studio")
ENGINE_MODULES = _package_modules("engine")


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
