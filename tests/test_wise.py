"""WiSE-FT weight interpolation (bscl.training.wise) and ``--train.interpolate`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from bscl.models import load_model
from bscl.run import run_training
from bscl.training.config import from_dict
from bscl.training.wise import interpolate_, snapshot

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"


class WithBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.register_buffer("ids", torch.tensor([0, 1]))


def test_interpolation_is_the_hand_computed_mix_and_keeps_integer_buffers():
    m = WithBuffer()
    with torch.no_grad():
        m.lin.weight.copy_(torch.tensor([[4.0, -8.0]]))
        m.lin.bias.fill_(2.0)
    start = {
        "lin.weight": torch.tensor([[0.0, 0.0]]),
        "lin.bias": torch.tensor([6.0]),
        "ids": torch.tensor([5, 7]),
    }
    interpolate_(m, start, 0.25)
    # (1 - 0.25) * start + 0.25 * fine-tuned
    assert m.lin.weight.tolist() == [[1.0, -2.0]]
    assert m.lin.bias.tolist() == [5.0]
    assert m.ids.tolist() == [0, 1]  # integer buffer: the model's own


def test_alpha_one_keeps_the_fine_tuned_weights_and_snapshot_is_a_copy():
    m = WithBuffer()
    before = snapshot(m)
    with torch.no_grad():
        m.lin.weight.add_(1.0)
    assert not torch.equal(before["lin.weight"], m.lin.weight)  # a copy, not a view
    tuned = snapshot(m)
    interpolate_(m, before, 1.0)
    assert torch.equal(m.lin.weight, tuned["lin.weight"])


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5])
def test_alpha_outside_zero_one_is_refused(alpha):
    m = WithBuffer()
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        interpolate_(m, snapshot(m), alpha)


def test_mismatched_starting_weights_name_the_tensor():
    m = WithBuffer()
    start = snapshot(m)
    start["extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match="'extra'"):
        interpolate_(m, start, 0.5)
    start = snapshot(m)
    start["lin.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="'lin.weight'"):
        interpolate_(m, start, 0.5)


def _config(out: Path, alpha: float):
    return from_dict(
        {
            "data": {"task": "stsb", "data_root": str(FIXTURES)},
            "train": {
                "model": "tiny",
                "output_dir": str(out),
                "epochs": 1,
                "batch_size": 4,
                "interpolate": alpha,
            },
            "eval": {"batch_size": 8, "before": False},
        }
    )


def test_train_interpolate_saves_the_mix_of_pretrained_and_fine_tuned(tmp_path):
    from sentence_transformers import SentenceTransformer

    run_training(_config(tmp_path / "full", 1.0))
    run_training(_config(tmp_path / "half", 0.5))
    pre = load_model("tiny", seed=0)[0].auto_model.state_dict()
    full = SentenceTransformer(str(tmp_path / "full" / "model"))[0].auto_model.state_dict()
    half = SentenceTransformer(str(tmp_path / "half" / "model"))[0].auto_model.state_dict()
    moved = [k for k in pre if pre[k].is_floating_point() and not torch.equal(pre[k], full[k])]
    assert moved  # training changed the weights, so the check below can fail
    for k in pre:
        if pre[k].is_floating_point():
            torch.testing.assert_close(half[k], 0.5 * pre[k] + 0.5 * full[k], rtol=1e-5, atol=1e-6)
    seeds = json.loads((tmp_path / "half" / "metrics.json").read_text())["seeds"]
    assert seeds["0"]["interpolated"]["alpha"] == 0.5
    assert "interpolated" not in json.loads((tmp_path / "full" / "metrics.json").read_text())["seeds"]["0"]


def test_bad_interpolate_names_the_option(tmp_path):
    with pytest.raises(ValueError, match="--train.interpolate"):
        _config(tmp_path / "x", 0.0).validate()
