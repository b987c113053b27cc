"""The documentation site builds with ``mkdocs build --strict``: broken links, references and
docstrings fail it, and its generated parts (the ``bscl train`` options, the citations) are there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_site_builds_strict_with_its_generated_parts(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "JSONARGPARSE_DEPRECATION_WARNINGS": "off"}
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    training = (site / "training" / "index.html").read_text(encoding="utf-8")
    assert "--train.epochs" in training and "--batching.strategy" in training  # from the parser
    assert "chernyavskiy-etal-2022-batch" in (site / "losses" / "index.html").read_text(encoding="utf-8")
    assert (site / "benchmarks" / "figures" / "results-stsb.svg").is_file()  # the results page's figures
    assert "bscl-paper" in (site / "index.html").read_text(encoding="utf-8")  # README's summary
