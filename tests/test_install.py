"""The range-pinned pyproject resolves into this (already populated) environment without changing it.

Slow and needs the package index (PyPI) for the build backend's metadata step only if something is
missing: run with ``pytest -m slow tests/test_install.py``. Manual equivalent:
``pip install --dry-run --no-build-isolation .`` must print ``Would install bscl-...`` and nothing else.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pyproject_ranges_resolve_into_the_existing_environment():
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    would = [line for line in proc.stdout.splitlines() if line.startswith("Would install")]
    assert would, proc.stdout[-2000:]
    # only bscl itself: no dependency is up- or downgraded to satisfy the declared ranges
    assert would[-1].split()[2:] == [f"bscl-{__import__('bscl').__version__}"], would
