"""The README's promises: short, its quick starts work, and the project's pages speak of the project."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def code_block(heading: str, language: str) -> str:
    """The first fenced ``language`` block after the README heading ``heading``."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(f"\n{heading}\n") :]
    match = re.search(rf"```{language}\n(.*?)```", after, re.DOTALL)
    assert match, f"no {language} block under {heading!r}"
    return match.group(1)


def test_the_readme_is_read_in_five_minutes():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 150


def test_the_pages_speak_of_the_project_not_of_its_history():
    # grep -ciE 'session|issue [0-9]' README.md benchmarks/*.md docs -r finds nothing
    pages = [README, *sorted((ROOT / "benchmarks").glob("*.md")), *sorted((ROOT / "docs").rglob("*.md"))]
    found = [
        f"{page.relative_to(ROOT)}:{n}: {line}"
        for page in pages
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"session|issue [0-9]", line, re.IGNORECASE)
    ]
    assert not found, "\n".join(found)


@pytest.mark.slow
def test_the_python_quick_start_trains_with_the_tiny_model(tmp_path, monkeypatch):
    code = code_block("## Quick start: Python", "python")
    assert 'load_model("minilm")' in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace('load_model("minilm")', 'load_model("tiny")'), "README.md", "exec"), {})
    assert (tmp_path / "out" / "model" / "modules.json").is_file()
    card = (tmp_path / "out" / "model" / "README.md").read_text(encoding="utf-8")
    assert "ComboLoss" in card or "combo" in card.lower()


def test_the_command_line_quick_start_options_are_the_parsers(tmp_path):
    from bscl.experiments import recipes
    from bscl.training.config import parse_command_line

    lines = code_block("## Quick start: command line, your own pairs", "bash").replace("\\\n", " ")
    command = next(line for line in lines.splitlines() if line.startswith("bscl train --data.task"))
    argv = shlex.split(command)[2:]
    pairs = tmp_path / "pairs.csv"
    rows = [f"question {i},answer {i},{i % 6}" for i in range(20)]
    pairs.write_text("question,answer,score\n" + "\n".join(rows) + "\n", encoding="utf-8")
    argv = [str(pairs) if a == "pairs.csv" else a for a in argv]
    argv = [str(tmp_path / "run") if a == "runs/mine" else a for a in argv]
    cfg = parse_command_line(argv, recipe_lookup=recipes.recipe)
    assert cfg.data.task == "generic" and cfg.data.label_max == 5 and cfg.data.train_file == str(pairs)
