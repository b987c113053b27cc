"""Behaviours that differ between the supported sentence-transformers / transformers releases keep
bscl's results right on each: padding-free stays off where the model's attention cannot be plugged in,
and the batch samplers take the trainer's seed however the trainer hands it over."""

from __future__ import annotations

import logging

import torch

from bscl.batching import make_batch_sampler
from bscl.models import load_model
from bscl.padding_free import enable_padding_free, is_padding_free


def test_padding_free_stays_off_where_the_attention_cannot_be_plugged_in(monkeypatch, caplog):
    """transformers 4.x: BERT computes attention inline and ``set_attn_implementation`` leaves it as it
    is; unpadded inputs would then attend across the whole batch."""
    model = load_model("tiny", seed=0, device="cpu")
    model.eval()
    hf = model[0].auto_model
    monkeypatch.setattr(hf, "set_attn_implementation", lambda name: None)  # as transformers 4.x's BERT
    texts = ["a", "the quick brown fox jumps over the lazy dog", "x y"]
    with torch.no_grad():
        want = model.encode(texts, convert_to_tensor=True)
    with caplog.at_level(logging.WARNING, logger="bscl.padding_free"):
        assert enable_padding_free(model) is False
    assert "AttentionInterface" in caplog.text and not is_padding_free(model)
    assert not model[0]._forward_pre_hooks and not model[0]._forward_hooks
    with torch.no_grad():
        torch.testing.assert_close(model.encode(texts, convert_to_tensor=True), want)


def test_sampler_takes_the_seed_from_the_generator_when_the_trainer_passes_seed_0():
    """sentence-transformers 5.x calls the batch sampler with ``seed=0`` and the generator it seeded
    with ``args.seed``; 6.x passes ``seed=args.seed``."""
    from datasets import Dataset

    data = Dataset.from_dict({"anchor": [f"q{i}" for i in range(8)], "positive": [f"a{i}" for i in range(8)]})
    factory = make_batch_sampler("random")
    generator = torch.Generator().manual_seed(3)
    assert factory(data, batch_size=4, generator=generator, seed=0).seed == 3  # 5.x
    assert factory(data, batch_size=4, generator=generator, seed=5).seed == 5  # 6.x
    assert make_batch_sampler("random", seed=7)(data, batch_size=4, generator=generator).seed == 7  # explicit
