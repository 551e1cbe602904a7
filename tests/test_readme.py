"""The README's quick start stays true: CI runs exactly its test command."""

from conftest import ROOT


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    command = ci[-1]
    assert command.startswith("python3 -m venv .venv")
    assert command in readme
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/genstudio" in readme
