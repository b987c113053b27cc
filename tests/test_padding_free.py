"""Padding-free forward (bscl.padding_free): the same numbers as the padded forward, no FLOPs on padding."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import transformers
from sentence_transformers import SentenceTransformer

from bscl.losses import STLoss
from bscl.losses.modules import build_loss
from bscl.models import load_model
from bscl.padding_free import (
    ATTENTION_NAME,
    disable_padding_free,
    enable_padding_free,
    is_padding_free,
    repad,
    unpad_features,
    varlen_sdpa,
)

# BERT's attention dispatches through transformers' AttentionInterface from transformers 5.0 on; with 4.x
# the padding-free forward stays off (tests/test_compat.py checks that fallback)
pytestmark = pytest.mark.skipif(
    int(transformers.__version__.split(".")[0]) < 5,
    reason="padding-free BERT needs transformers >= 5.0 (attention through AttentionInterface)",
)

TEXTS = [
    "a",
    "the quick brown fox jumps over the lazy dog",
    "hello world",
    "padding free forward passes compute only the real tokens of each sentence in a batch",
    "x y",
    "an old tree",
]
# (atol, rtol) per dtype: the 1e-10 in float64 and 1e-5 in float32
TOL = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-5, 1e-5)}


def random_batch(model: SentenceTransformer, rows: int, max_len: int, seed: int) -> dict[str, torch.Tensor]:
    """Right-padded random token ids: lengths from 1 token to ``max_len`` (both ends included)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (rows,), generator=g)
    lengths[0], lengths[1] = 1, max_len
    vocab = model[0].auto_model.config.vocab_size
    ids = torch.randint(5, vocab, (rows, max_len), generator=g)
    mask = (torch.arange(max_len)[None] < lengths[:, None]).long()  # (rows, max_len)
    types = torch.randint(0, 2, (rows, max_len), generator=g) * mask
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": types}


def forward_backward(model: SentenceTransformer, features: dict[str, torch.Tensor]) -> dict[str, object]:
    """Token embeddings on real tokens, sentence embeddings, a BSC loss and every parameter gradient."""
    model.zero_grad(set_to_none=True)
    out = model(dict(features))
    emb = out["sentence_embedding"]  # (rows, d)
    half = emb.shape[0] // 2
    loss = build_loss("bsc", tau=0.1)(emb[:half], emb[half : 2 * half])
    loss.backward()
    keep = features["attention_mask"].bool()
    return {
        "tokens": out["token_embeddings"][keep].detach(),  # (T, hidden)
        "shape": tuple(out["token_embeddings"].shape),
        "sentences": emb.detach(),
        "loss": loss.detach(),
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
    }


def assert_same(padded: dict[str, object], free: dict[str, object], dtype: torch.dtype) -> None:
    atol, rtol = TOL[dtype]
    assert free["shape"] == padded["shape"]
    for key in ("tokens", "sentences", "loss"):
        torch.testing.assert_close(free[key], padded[key], atol=atol, rtol=rtol, msg=key)
    assert padded["grads"].keys() == free["grads"].keys()
    with_grad = 0
    for name, g in padded["grads"].items():
        h = free["grads"][name]
        assert (g is None) == (h is None), name
        if g is not None:
            torch.testing.assert_close(h, g, atol=atol, rtol=rtol, msg=name)
            with_grad += 1
    assert with_grad > 10  # the encoder's parameters got gradients (the pooler none, in both)


def assert_close_relative(padded: dict[str, object], free: dict[str, object], tol: float) -> None:
    """Half precision: every tensor within ``tol`` in relative Frobenius norm (``||free - padded|| /
    ||padded||``), as two summation orders of bf16 products differ in the last bits everywhere."""

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = a.double(), b.double()
        return float((a - b).norm() / b.norm().clamp_min(1e-30))

    assert free["shape"] == padded["shape"]
    for key in ("tokens", "sentences", "loss"):
        assert rel(free[key], padded[key]) <= tol, key
    for name, g in padded["grads"].items():
        if g is not None:
            assert rel(free["grads"][name], g) <= tol, name


#: relative (Frobenius) tolerance of the bfloat16 comparison on CUDA: 8 bits of mantissa (eps 2^-8 =
#: 3.9e-3), a few roundings per layer
BF16_TOL = 2e-2


def check_equivalence(
    name: str, dtype: torch.dtype, rows: int, max_len: int, seed: int = 0, device: str = "cpu"
) -> None:
    model = load_model(name).to(device=device, dtype=dtype)
    model.eval()  # dropout off
    features = {k: v.to(device) for k, v in random_batch(model, rows, max_len, seed).items()}
    padded = forward_backward(model, features)
    assert enable_padding_free(model) and is_padding_free(model)
    free = forward_backward(model, features)
    if dtype in TOL:
        assert_same(padded, free, dtype)
    else:
        assert_close_relative(padded, free, BF16_TOL)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1])
def test_tiny_equals_padded(dtype, seed):
    check_equivalence("tiny", dtype, rows=12, max_len=48, seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_minilm_equals_padded(dtype):
    check_equivalence("minilm", dtype, rows=8, max_len=90)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ["tiny", "minilm"])
def test_cuda_equals_padded(name, dtype):
    """On a GPU: fp32 to the CPU tolerance, bf16 (flash-attention's varlen kernel where installed, else
    SDPA per sentence) to :data:`BF16_TOL`; lengths 1..max as on the CPU."""
    check_equivalence(name, dtype, rows=16, max_len=90 if name == "minilm" else 48, device="cuda")


def test_one_host_copy_per_forward(monkeypatch):
    """The flat path reads the lengths to the host once per forward (``tolist``), not once per layer,
    and finds the real tokens without a synchronising ``nonzero``."""
    import sys

    import bscl.padding_free as pf

    copies: list[str] = []
    for method in ("tolist", "item", "nonzero", "__bool__", "__int__"):
        original = getattr(torch.Tensor, method)

        def spy(self, *args, _original=original, _method=method, **kwargs):
            if sys._getframe(1).f_code.co_filename == pf.__file__:
                copies.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, spy)
    model = load_model("tiny", padding_free=True).eval()
    features = random_batch(model, rows=6, max_len=20, seed=4)
    out = model(dict(features))
    assert out["token_embeddings"].shape == (6, 20, model[0].auto_model.config.hidden_size)
    assert copies == ["tolist"]


def test_the_flat_path_runs_and_attends_per_sequence(monkeypatch):
    import bscl.padding_free as pf

    calls = []

    def spy(query, key, value, cu_seq_lens, **kwargs):
        calls.append((tuple(query.shape), cu_seq_lens.tolist(), kwargs["dropout"]))
        return varlen_sdpa(query, key, value, cu_seq_lens, **kwargs)

    monkeypatch.setattr(pf, "varlen_sdpa", spy)
    model = load_model("tiny", padding_free=True)
    features = random_batch(model, rows=4, max_len=10, seed=3)
    model.eval()
    model(dict(features))
    lengths = features["attention_mask"].sum(1)
    total = int(lengths.sum())
    layers = model[0].auto_model.config.num_hidden_layers
    assert len(calls) == layers  # every layer's attention went through the per-sequence path
    assert calls[0][0][2] == total  # (1, heads, real tokens, head dim): no padding
    assert calls[0][1] == [0, *lengths.cumsum(0).tolist()]
    assert calls[0][2] == 0.0  # eval: no attention dropout
    model.train()
    model(dict(features))
    assert calls[-1][2] == model[0].auto_model.config.attention_probs_dropout_prob > 0


def test_a_features_dict_used_twice_gets_fresh_outputs():
    """sentence-transformers writes the outputs into the features dict; a second forward on the same dict
    (holding the first call's token embeddings) must overwrite them, as the padded forward does."""
    model = load_model("tiny", padding_free=True).eval()
    features = random_batch(model, rows=4, max_len=12, seed=2)
    with torch.no_grad():
        first = model(features)["sentence_embedding"].clone()
        model[0].auto_model.embeddings.word_embeddings.weight.mul_(2.0)
        second = model(features)["sentence_embedding"]
    assert features["input_ids"].shape == (4, 12) and "cu_seq_lens_q" not in features
    assert not torch.allclose(first, second)


def test_all_layer_embeddings_are_re_padded_too():
    model = load_model("tiny").double().eval()
    model[0].auto_model.config.output_hidden_states = True
    features = random_batch(model, rows=5, max_len=16, seed=7)
    keep = features["attention_mask"].bool()
    with torch.no_grad():
        padded = model(dict(features))["all_layer_embeddings"]
        enable_padding_free(model)
        free = model(dict(features))["all_layer_embeddings"]
    assert len(free) == len(padded) == model[0].auto_model.config.num_hidden_layers + 1
    for a, b in zip(padded, free, strict=True):
        assert b.shape == a.shape
        torch.testing.assert_close(b[keep], a[keep], atol=1e-10, rtol=1e-10)


def test_inputs_without_padding_or_mask_take_the_padded_path(monkeypatch):
    import bscl.padding_free as pf

    monkeypatch.setattr(pf, "varlen_sdpa", lambda *a, **k: pytest.fail("flat path taken"))
    model = load_model("tiny", padding_free=True).eval()
    features = random_batch(model, rows=3, max_len=8, seed=1)
    full = {k: v[1:2] for k, v in features.items()}  # the one row of max length: nothing to remove
    no_mask = {k: v for k, v in features.items() if k != "attention_mask"}
    with torch.no_grad():
        assert model(dict(full))["token_embeddings"].shape == (1, 8, 32)
        assert model(dict(no_mask))["token_embeddings"].shape == (3, 8, 32)


def test_unpad_repad_round_trip():
    ids = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [9, 10, 11, 12]])
    mask = (ids > 0).long()
    types = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 1]])
    flat = unpad_features(ids, mask, types)
    assert flat["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10, 11, 12]]
    assert flat["position_ids"].tolist() == [[0, 1, 2, 0, 0, 1, 2, 3]]  # restart at 0 per sequence
    assert flat["token_type_ids"].tolist() == [[0, 1, 1, 1, 0, 0, 1, 1]]
    assert flat["cu_seq_lens_q"].tolist() == [0, 3, 4, 8] and flat["max_length_q"] == 4
    hidden = torch.arange(8.0)[None, :, None].expand(1, 8, 2)  # (1, T, 2)
    back = repad(hidden, mask.bool())  # (3, 4, 2)
    assert back[..., 0].tolist() == [[0, 1, 2, 0], [3, 0, 0, 0], [4, 5, 6, 7]]


def test_option_off_is_todays_path():
    plain = load_model("tiny")
    assert not is_padding_free(plain)
    assert plain[0].auto_model.config._attn_implementation == "sdpa"
    assert not plain[0]._forward_pre_hooks and not plain[0]._forward_hooks
    model = load_model("tiny", padding_free=True)
    assert model[0].auto_model.config._attn_implementation == ATTENTION_NAME
    disable_padding_free(model)
    assert not is_padding_free(model)
    assert model[0].auto_model.config._attn_implementation == "sdpa"
    assert not model[0]._forward_pre_hooks and not model[0]._forward_hooks
    model.eval()
    plain.eval()
    features = random_batch(plain, rows=6, max_len=20, seed=5)
    with torch.no_grad():
        a = plain(dict(features))["token_embeddings"]
        b = model(dict(features))["token_embeddings"]
    assert torch.equal(a, b)  # bit for bit, padding positions included


def test_save_and_load_with_plain_sentence_transformer(tmp_path):
    model = load_model("tiny", padding_free=True)
    reference = load_model("tiny")
    model.save(str(tmp_path / "m"))
    reference.save(str(tmp_path / "ref"))
    config = (tmp_path / "m" / "config.json").read_text()
    assert "bscl" not in config and ATTENTION_NAME not in config
    assert json.loads(config) == json.loads((tmp_path / "ref" / "config.json").read_text())
    for name in ("modules.json", "sentence_bert_config.json"):
        assert (tmp_path / "m" / name).read_text() == (tmp_path / "ref" / name).read_text()
    loaded = SentenceTransformer(str(tmp_path / "m"), local_files_only=True)
    assert not is_padding_free(loaded)
    assert loaded[0].auto_model.config._attn_implementation == "sdpa"
    assert torch.equal(
        torch.cat([p.flatten() for p in loaded.parameters()]),
        torch.cat([p.flatten() for p in model.parameters()]),
    )
    emb_free = model.encode(TEXTS, batch_size=4, convert_to_tensor=True)
    emb_loaded = loaded.encode(TEXTS, batch_size=4, convert_to_tensor=True)
    torch.testing.assert_close(emb_free, emb_loaded, atol=1e-5, rtol=1e-5)


def loss_and_grads(model, loss, columns, labels):
    """The loss value and every parameter gradient of one eval-mode forward + backward."""
    model.eval()
    model.zero_grad(set_to_none=True)
    value = loss([dict(c) for c in columns], labels)
    value.backward()
    return value.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def assert_same_loss_and_grads(want, got):
    (v0, g0), (v1, g1) = want, got
    torch.testing.assert_close(v1, v0, atol=1e-10, rtol=1e-10)
    assert g0.keys() == g1.keys() and len(g0) > 10
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], atol=1e-10, rtol=1e-10, msg=name)


def bsc():
    return build_loss("bsc", tau=0.1, use_labels=True, threshold=0.6)


LABELS = torch.tensor([1.0, 0.2, 0.9, 0.0, 0.7, 1.0], dtype=torch.float64)


def test_cached_loss_with_padding_free_equals_plain_loss():
    """STLoss with gradient caching slices padded mini-batches; each one runs padding-free: same loss and gradients."""
    padded_model = load_model("tiny").double()
    free_model = load_model("tiny", padding_free=True).double()
    columns = [features_of(padded_model, TEXTS), features_of(padded_model, list(reversed(TEXTS)))]
    assert_same_loss_and_grads(
        loss_and_grads(padded_model, STLoss(padded_model, bsc()), columns, LABELS),
        loss_and_grads(free_model, STLoss(free_model, bsc(), mini_batch_size=2), columns, LABELS),
    )


def test_one_forward_for_all_columns_equals_one_pass_per_column():
    """With the padding-free model, STLoss embeds the query and answer columns in one forward pass: the
    same loss and parameter gradients as the padded model's pass per column (queries, then answers)."""
    padded_model = load_model("tiny").double()
    free_model = load_model("tiny", padding_free=True).double()
    answers = list(reversed(TEXTS))[:-1] + ["a b c d e f g h i j k l m n o p"]  # a longer answer column
    columns = [features_of(padded_model, TEXTS), features_of(padded_model, answers)]
    calls: list[int] = []
    free_model[0].register_forward_pre_hook(lambda module, args: calls.append(1))
    want = loss_and_grads(padded_model, STLoss(padded_model, bsc()), columns, LABELS)
    assert_same_loss_and_grads(want, loss_and_grads(free_model, STLoss(free_model, bsc()), columns, LABELS))
    assert len(calls) == 1  # one forward of the encoder for both columns
    loss_and_grads(free_model, STLoss(free_model, bsc(), one_forward=False), columns, LABELS)
    assert len(calls) == 3  # one pass per column


def features_of(model: SentenceTransformer, texts: list[str]) -> dict[str, torch.Tensor]:
    return dict(model.preprocess(texts))


def loss_curve(padding_free: bool, seed: int, steps: int = 40) -> list[float]:
    """Training losses of a short tiny-model run with dropout on (same batches for every call)."""
    model = load_model("tiny", padding_free=padding_free)
    model.train()
    loss = STLoss(model, build_loss("bsc", tau=0.1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.Generator().manual_seed(123)
    words = TEXTS[1].split() + TEXTS[3].split()
    torch.manual_seed(seed)  # dropout masks
    curve = []
    for _ in range(steps):
        pick = torch.randint(len(words), (8, 6), generator=data).tolist()
        q = [" ".join(words[i] for i in row[: 1 + r % 6]) for r, row in enumerate(pick)]
        a = [" ".join(words[i] for i in row[::-1]) for row in pick]
        value = loss([features_of(model, q), features_of(model, a)])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        curve.append(float(value.detach()))
    return curve


def test_training_curve_with_dropout_matches_padded_statistically():
    """With dropout on, padding-free draws other dropout masks (over (T, hidden) instead of (B, L, hidden)),
    which is what changing the seed does. Tolerance: the mean absolute gap between the padding-free and the
    padded curve (same seed) is at most 1.5x the largest gap between padded curves of three seeds, and
    the final losses agree within the spread of the padded seeds plus that gap."""
    padded = [loss_curve(False, seed) for seed in (0, 1, 2)]
    free = loss_curve(True, 0)

    def gap(x: list[float], y: list[float]) -> float:
        return sum(abs(a - b) for a, b in zip(x, y, strict=True)) / len(x)

    seed_gap = max(gap(padded[i], padded[j]) for i, j in ((0, 1), (0, 2), (1, 2)))
    assert seed_gap > 0  # dropout is on
    assert gap(free, padded[0]) <= 1.5 * seed_gap
    finals = [sum(c[-10:]) / 10 for c in padded]
    assert min(finals) - 1.5 * seed_gap <= sum(free[-10:]) / 10 <= max(finals) + 1.5 * seed_gap
    assert free[-1] < free[0]  # it trains


def test_unsupported_architecture_warns_and_stays_padded(tmp_path, caplog):
    from transformers import BertTokenizerFast, MPNetConfig, MPNetModel

    from bscl.models import tiny_model_path

    folder = tmp_path / "mpnet"
    config = MPNetConfig(
        vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    MPNetModel(config).save_pretrained(folder)
    BertTokenizerFast.from_pretrained(str(tiny_model_path())).save_pretrained(folder)
    with caplog.at_level(logging.WARNING, logger="bscl.padding_free"):
        model = load_model(str(folder), padding_free=True)
    assert not is_padding_free(model)
    assert "MPNet" in caplog.text and "padded path" in caplog.text
    assert model[0].auto_model.config._attn_implementation != ATTENTION_NAME
    assert model.encode(TEXTS[:2]).shape == (2, 32)
