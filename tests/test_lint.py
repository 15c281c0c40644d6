"""The code base stays ruff-clean and mypy --strict-clean: checked here so CI catches it, not a reviewer."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the test extra; install with pip install -e '.[test]'"
    proc = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow  # about 20 s with a cold .mypy_cache, as in CI
def test_mypy_strict_is_clean() -> None:
    """The package type-checks under ``strict = true`` ([tool.mypy] in pyproject.toml).

    Runs incrementally with the cache in ``.mypy_cache``: cold it takes several seconds, warm
    well under one.
    """
    assert importlib.util.find_spec("mypy"), (
        "mypy is part of the test extra; install with pip install -e '.[test]'"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "autoscore"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_public_api_is_what_all_says() -> None:
    import autoscore

    for name in autoscore.__all__:
        assert hasattr(autoscore, name), name
