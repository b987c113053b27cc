"""Forward-only encode passes batched by token length (bscl.batching.encoding): the sampler's grouping
pass and the evaluations give model.encode's embeddings, in fewer, length-sorted batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset

from bscl.batching import make_batch_sampler
from bscl.batching.encoding import encode_by_length, length_batches, token_lengths
from bscl.models import load_model

TEXTS = [
    "a",
    "the quick brown fox jumps over the lazy dog",
    "hello world",
    "padding free forward passes compute only the real tokens of each sentence in a batch",
    "x y",
    "an old tree",
    "hello world",
    "a short one",
    "rain on the sea and a boat on the rain",
    "",
]


@pytest.fixture(scope="module")
def tiny() -> Any:
    return load_model("tiny")


def reference(model: Any, texts: list[str]) -> np.ndarray:
    """What the encode passes computed before: one plain ``model.encode`` call, L2-normalised."""
    emb = model.encode(texts, batch_size=4, convert_to_numpy=True, normalize_embeddings=True)
    return np.asarray(emb, dtype=np.float32)


def test_length_batches_cover_every_text_once_longest_first_within_the_budget():
    lengths = np.array([3, 9, 1, 9, 4, 30, 2, 2])
    batches = length_batches(lengths, batch_size=2, max_tokens=12)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(lengths.size))
    assert (np.diff(lengths[flat]) <= 0).all()  # longest first
    assert flat[:3].tolist() == [5, 1, 3]  # ties keep the input order
    for b in batches:
        assert b.size == 1 or lengths[b].sum() <= 12  # a text over the budget is a batch of its own
    assert [b.tolist() for b in batches[:2]] == [[5], [1]]
    with pytest.raises(ValueError, match="batch_size"):
        length_batches(lengths, batch_size=0)


def test_token_lengths_count_the_models_tokens(tiny):
    lengths = token_lengths(tiny, ["ab", "abc d"])
    ids = tiny.tokenizer(["ab", "abc d"])["input_ids"]
    assert lengths.tolist() == [len(x) for x in ids]


@pytest.mark.parametrize("padding_free", [False, True])
def test_encode_by_length_equals_model_encode_and_restores_training_mode(padding_free):
    model = load_model("tiny", padding_free=padding_free)
    model.train()
    got = encode_by_length(model, TEXTS, batch_size=2, max_tokens=40)
    assert model.training
    want = reference(model, TEXTS)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_encode_by_length_runs_without_autograd(tiny, monkeypatch):
    seen: list[bool] = []
    tiny[0].register_forward_pre_hook(lambda *_: seen.append(torch.is_inference_mode_enabled()))
    encode_by_length(tiny, TEXTS[:4], batch_size=2)
    assert seen and all(seen)


def test_progress_bar_on_request_and_off_when_not_a_terminal(tiny, capsys):
    encode_by_length(tiny, TEXTS, batch_size=2, show_progress_bar=True, desc="grouping pass")
    assert "grouping pass" in capsys.readouterr().err
    encode_by_length(tiny, TEXTS, batch_size=2)  # pytest's stderr is not a terminal
    assert "grouping pass" not in capsys.readouterr().err


def test_sampler_encode_pass_gives_the_same_embeddings_and_the_same_batches(tiny):
    n = 40
    words = ["cat", "dog", "sun", "rain", "tree", "car", "boat"]
    ds = Dataset.from_dict(
        {
            "q": [f"{words[i % 7]} {words[(i * 3) % 7]} and {words[(i * 5) % 7]} {i}" for i in range(n)],
            "a": [f"reply {i}" for i in range(n)],
        }
    )
    new = make_batch_sampler("example", group_size=4, n_candidates=16)
    new.set_model(tiny, batch_size=8)
    old = make_batch_sampler("example", group_size=4, n_candidates=16, encoder=lambda t: reference(tiny, t))
    a, b = new(ds, batch_size=8, seed=1), old(ds, batch_size=8, seed=1)
    np.testing.assert_allclose(a.encoder(a.texts()), b.encoder(b.texts()), atol=1e-5)
    assert [x.tolist() for x in a.global_batches(0)] == [x.tolist() for x in b.global_batches(0)]


def test_bscl_trainer_gives_a_model_based_sampler_its_model(tmp_path):
    from sentence_transformers import SentenceTransformerTrainingArguments

    from bscl.losses import STLoss
    from bscl.losses.modules import build_loss
    from bscl.training import BSCLTrainer

    model = load_model("tiny")
    factory = make_batch_sampler("example", group_size=2)
    ds = Dataset.from_dict({"q": [f"q {i}" for i in range(8)], "a": [f"a {i}" for i in range(8)]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path), batch_sampler=factory, per_device_eval_batch_size=4, report_to="none"
    )
    assert factory.encoder is None
    BSCLTrainer(model=model, args=args, train_dataset=ds, loss=STLoss(model, build_loss("bsc", tau=0.1)))
    assert factory.encoder is not None
    sampler = factory(ds, batch_size=4, seed=0)
    assert len(sampler.global_batches(0)) == 2  # groups by the model's embeddings, no error
    assert sampler.stats["n_encoded"] == 8


def test_similarity_evaluator_gives_the_librarys_metrics(tiny):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from bscl.evaluation.evaluators import SimilarityEvaluator

    s1, s2 = TEXTS[:8], TEXTS[2:]
    scores = [0.1, 0.9, 0.3, 0.5, 0.7, 0.2, 0.8, 0.4]
    ours = SimilarityEvaluator(s1, s2, scores, batch_size=3, write_csv=False)(tiny)
    library = EmbeddingSimilarityEvaluator(s1, s2, scores, batch_size=3, write_csv=False)(tiny)
    assert ours.keys() == library.keys()
    for key, value in library.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
