"""The public loss API does what its docs say: every loss name in ``bscl.losses`` is the model-first class,
misuse of the two levels is an error that names the right call, labels outside [0, 1] are an error that
names ``label_max`` (Python and CLI), the columns are embedded with the model's public forward only."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

import bscl.losses as L
from bscl.losses import modules as M
from bscl.losses.st import column_rows, embed_columns, merge_columns
from bscl.models import load_model

SRC = Path(__file__).resolve().parents[1] / "src"
FIRST = ["a cat sits on the mat", "dogs bark", "rain is expected tomorrow"]
SECOND = ["a cat is on a mat", "a dog barks loudly at night", "it will rain"]


@pytest.fixture(scope="module")
def model():
    return load_model("tiny", seed=0, device="cpu")


def features(model, texts: list[str]) -> dict:
    return model.preprocess(texts)


def test_every_loss_class_name_in_bscl_losses_is_the_model_first_class(model):
    for name, cls in L.ST_LOSSES.items():
        assert getattr(L, cls.__name__) is cls, f"bscl.losses.{cls.__name__} is not ST_LOSSES[{name!r}]"
        assert cls.__name__ in L.__all__
    loss = L.PearsonComboLoss(model)
    value = loss([features(model, FIRST), features(model, SECOND)], torch.tensor([0.9, 0.5, 0.1]))
    assert value.dim() == 0 and torch.isfinite(value)


def test_a_model_first_loss_without_a_model_names_the_embedding_class(model):
    with pytest.raises(TypeError, match=r"BSCLoss\(model, \*\*options\).*bscl\.losses\.modules\.BSCLoss"):
        L.BSCLoss(tau=0.1)
    with pytest.raises(TypeError, match="got 0.1"):
        L.BSCLoss(0.1)


def test_stloss_refuses_a_model_first_loss_and_names_the_embedding_class(model):
    with pytest.raises(
        TypeError, match=r"pass it to the trainer.*STLoss\(model, bscl\.losses\.modules\.ComboLoss"
    ):
        L.STLoss(model, L.ComboLoss(model))
    with pytest.raises(TypeError, match="first argument must be the SentenceTransformer"):
        L.STLoss(M.BSCLoss(), "bsc")
    assert isinstance(L.STLoss(model, M.BSCLoss(tau=0.1)).loss, M.BSCLoss)  # the documented call


@pytest.mark.parametrize("name", [n for n, cls in M.LOSSES.items() if cls.requires_labels] + ["bsc"])
def test_labels_outside_0_1_are_an_error_naming_label_max(model, name):
    loss = L.ST_LOSSES[name](model)
    batch = [features(model, FIRST), features(model, SECOND)]
    with pytest.raises(ValueError, match=r"labels in \[0, 5\].*label_max.*--data\.label_max 5"):
        loss(batch, torch.tensor([5.0, 2.5, 0.0]))
    with pytest.raises(ValueError, match=r"labels in \[-1, 1\]"):
        loss(batch, torch.tensor([-1.0, 1.0, 0.0]))
    assert torch.isfinite(loss(batch, torch.tensor([1.0, 0.5, 0.0])))


def test_labels_a_loss_ignores_are_not_checked(model):
    loss = L.BSCLoss(model, use_labels=False)
    assert torch.isfinite(
        loss([features(model, FIRST), features(model, SECOND)], torch.tensor([5.0, 2.0, 0.0]))
    )


def test_cli_score_out_of_range_names_data_label_max(tmp_path, capsys):
    from bscl.cli import main

    train = tmp_path / "train.csv"
    train.write_text(
        "sentence1,sentence2,score\n"
        + "".join(f"{a},{b},{i}\n" for i, (a, b) in enumerate(zip(FIRST, SECOND, strict=True)))
    )
    argv = [
        "train",
        "--data.task=generic",
        f"--data.train_file={train}",
        "--train.model=tiny",
        f"--train.output_dir={tmp_path / 'run'}",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "outside [0.0, 1.0]" in err and "--data.label_max" in err, err


# ---- the columns through the model's public forward ----------------------------------------------------


def test_merged_columns_embed_as_each_column_alone(model):
    model.eval()  # no dropout: the merged forward must give each text its own embedding
    columns = [features(model, FIRST), features(model, SECOND), features(model, ["x", "y", "z w"])]
    with torch.no_grad():
        alone = [model(dict(c))["sentence_embedding"] for c in columns]
        merged = embed_columns(model, [dict(c) for c in columns], merge_all=True)
        candidates_merged = embed_columns(model, [dict(c) for c in columns])
    for want, got, got2 in zip(alone, merged, candidates_merged, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got2, want, atol=1e-5, rtol=1e-5)


def test_columns_that_cannot_be_merged():
    ids = torch.ones(2, 3, dtype=torch.long)
    assert merge_columns([{"input_ids": ids}, {"input_ids": ids, "token_type_ids": ids}]) is None
    assert merge_columns([{"input_ids": ids, "cu_seq_lens_q": torch.tensor([0, 3, 6])}] * 2) is None
    assert merge_columns([{"input_ids": ids, "prompt": "a"}, {"input_ids": ids, "prompt": "b"}]) is None
    assert merge_columns([{"input_ids": ids, "inputs_embeds": torch.ones(2, 3, 4)}] * 2) is None
    merged = merge_columns([{"input_ids": ids}, {"input_ids": torch.ones(2, 5, dtype=torch.long)}])
    assert (
        merged is not None and merged["input_ids"].shape == (4, 5) and merged["input_ids"][:2, 3:].sum() == 0
    )
    with pytest.raises(ValueError, match="set mini_batch_size"):
        embed_columns(
            nn.Identity(), [{"input_ids": ids}, {"input_ids": ids, "token_type_ids": ids}], merge_all=True
        )


def test_column_rows_padded_and_flattened():
    assert column_rows({"input_ids": torch.ones(3, 7, dtype=torch.long)}) == 3
    assert (
        column_rows(
            {"input_ids": torch.ones(1, 9, dtype=torch.long), "cu_seq_lens_q": torch.tensor([0, 4, 9])}
        )
        == 2
    )


def _sentence_transformers_imports() -> list[tuple[str, str, str]]:
    """``(file, module, name)`` of every ``from sentence_transformers... import name`` in the library."""
    found = []
    for path in sorted((SRC / "bscl").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sentence_transformers"):
                found += [(str(path.relative_to(SRC)), node.module, alias.name) for alias in node.names]
    return found


def test_the_library_imports_only_public_sentence_transformers_names():
    """No ``_private`` name or module; each name is a submodule or exported (``__all__``) by its module
    or package."""
    imports = _sentence_transformers_imports()
    assert imports
    private = []
    for file, module, name in imports:
        if name.startswith("_") or any(part.startswith("_") for part in module.split(".")):
            private.append(f"{file}: from {module} import {name}")
            continue
        package = hasattr(importlib.import_module(module), "__path__")
        if package and importlib.util.find_spec(f"{module}.{name}") is not None:
            continue  # a public submodule
        exported = set(getattr(importlib.import_module(module), "__all__", ()))
        exported |= set(getattr(importlib.import_module(module.rsplit(".", 1)[0]), "__all__", ()))
        if name not in exported:
            private.append(
                f"{file}: from {module} import {name} (not in the __all__ of the module or package)"
            )
    assert not private, "\n".join(private)
