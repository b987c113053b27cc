"""The losses inside sentence-transformers: equivalence with MNRL, text ids, real (tiny) training runs."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from bscl.losses import STLoss, text_ids
from bscl.losses import functional as F
from bscl.losses.modules import build_loss
from bscl.models import load_model
from bscl.training import BSCLTrainer

WORDS = [
    "red",
    "blue",
    "green",
    "cat",
    "dog",
    "bird",
    "runs",
    "sleeps",
    "eats",
    "small",
    "big",
    "old",
    "new",
    "fast",
    "slow",
    "happy",
    "sad",
    "tree",
    "house",
    "car",
]


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny", seed=0)


def _pairs(n: int = 32, seed: int = 0) -> Dataset:
    """Pairs whose second text shares words with the first (a learnable signal), graded labels."""
    g = torch.Generator().manual_seed(seed)
    anchors, positives, labels = [], [], []
    for i in range(n):
        words = [WORDS[int(j)] for j in torch.randint(0, len(WORDS), (4,), generator=g)]
        anchor = " ".join(words)
        if i % 2 == 0:  # positive: same words shuffled
            perm = torch.randperm(4, generator=g).tolist()
            other, label = " ".join(words[p] for p in perm), 1.0
        else:  # negative: unrelated words
            other = " ".join(WORDS[int(j)] for j in torch.randint(0, len(WORDS), (4,), generator=g))
            label = 0.0
        # the triplet loss groups rows by anchor text: give each anchor a positive and a negative
        anchors.append(anchor if i % 2 == 0 else anchors[-1])
        positives.append(other)
        labels.append(label)
    return Dataset.from_dict({"anchor": anchors, "positive": positives, "label": labels})


@pytest.mark.parametrize("tau", [0.05, 0.1, 1.0])
def test_symmetric_bsc_equals_mnrl_both_directions(tiny, tau):
    """Plain symmetric BSC (L2, fixed tau, directions averaged) == MNRL with both directions at scale 1/tau."""
    g = torch.Generator().manual_seed(1)
    q, a = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
    mnrl = MultipleNegativesRankingLoss(
        tiny, scale=1 / tau, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
    )
    want = mnrl.compute_loss_from_embeddings([q, a], labels=None)
    got = F.bsc_loss(q, a, tau, symmetric=True, combine="mean")
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    # eq. 1 as printed sums the two directions: exactly twice MNRL's average
    assert torch.allclose(F.bsc_loss(q, a, tau, combine="sum"), 2 * want, rtol=1e-5, atol=1e-6)
    # one direction == classic MNRL
    one = MultipleNegativesRankingLoss(tiny, scale=1 / tau).compute_loss_from_embeddings([q, a], labels=None)
    assert torch.allclose(F.bsc_loss(q, a, tau, symmetric=False), one, rtol=1e-5, atol=1e-6)


def test_text_ids_from_tokens(tiny):
    texts = ["a cat", "a dog", "a cat", "the cat sat on the mat", "a dog"]
    features = tiny.preprocess(texts)
    ids = text_ids(features).tolist()
    assert ids[0] == ids[2] and ids[1] == ids[4]
    assert len({ids[0], ids[1], ids[3]}) == 3


def test_adapter_finds_duplicates_from_text_not_embeddings(tiny):
    """With dropout on, identical texts get different embeddings; the adapter still groups them."""
    texts_q = ["red cat", "blue dog", "red cat", "green bird"]
    texts_a = ["a red cat", "a blue dog", "a red kitten", "a green bird"]
    features = [tiny.preprocess(texts_q), tiny.preprocess(texts_a)]
    loss = STLoss(tiny, build_loss("bsc", tau=0.1, duplicates=True, symmetric=False))
    q_ids, _ = loss.ids(features)
    assert q_ids[0] == q_ids[2] and q_ids[0] != q_ids[1]
    tiny.train()
    q, a = loss.embed(features)
    assert not torch.allclose(q[0], q[2])  # dropout: equal texts, different embeddings
    got = loss.loss_from_embeddings(q, a, None, features)
    want = F.bsc_loss(q, a, 0.1, q_ids=q_ids, a_ids=torch.arange(4), symmetric=False)
    assert torch.allclose(got, want)
    tiny.eval()


LOSS_CASES = {
    "bsc": {"tau": 0.1},
    "bsc-labels-dups-coordinate": {
        "tau": 1.0,
        "use_labels": True,
        "duplicates": True,
        "normalization": "coordinate",
    },
    "bsc-trainable-tau": {"tau": 0.1, "trainable_tau": True, "tau_parametrization": "alpha"},
    "combo": {"tau": 0.1, "mu": 0.5},
    "mse": {},
    "triplet": {"margin": 0.5},
    "pearson": {},
    "softcse-weight": {"tau": 0.1, "beta": -1.0},
    "softcse-temperature": {"tau": 0.1, "gamma": 0.5},
    "focal-infonce": {"tau": 0.1},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(LOSS_CASES))
def test_training_lowers_the_loss_and_saves_a_loadable_model(case, tmp_path):
    name = case.split("-labels")[0].split("-trainable")[0]
    model = load_model("tiny", seed=0)
    data = _pairs(32)
    loss = STLoss(model, build_loss(name, **LOSS_CASES[case]))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=8,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=32,
        learning_rate=3e-3,
        warmup_ratio=0.1,
        logging_steps=4,
        save_strategy="no",
        report_to="none",
        seed=0,
        dataloader_drop_last=False,
        disable_tqdm=True,
    )
    trainer = BSCLTrainer(model=model, args=args, train_dataset=data, eval_dataset=data, loss=loss)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < before, f"{case}: eval loss {before:.4f} -> {after:.4f}"

    out = tmp_path / "model"
    model.save(str(out))
    reloaded = SentenceTransformer(str(out), device="cpu")
    emb = reloaded.encode(["red cat runs"], convert_to_tensor=True)
    assert torch.allclose(emb, model.encode(["red cat runs"], convert_to_tensor=True), atol=1e-6)

    if LOSS_CASES[case].get("trainable_tau"):
        logged = [row["tau"] for row in trainer.state.log_history if "tau" in row]
        assert logged, "the temperature is logged"
        assert logged[-1] != pytest.approx(0.1, abs=1e-9), "the temperature was trained"


def test_trainable_temperature_gets_own_lr_and_no_weight_decay(tiny, tmp_path):
    loss = STLoss(tiny, build_loss("bsc", tau=0.1, trainable_tau=True))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path), learning_rate=2e-5, weight_decay=0.01, report_to="none", disable_tqdm=True
    )
    trainer = BSCLTrainer(model=tiny, args=args, train_dataset=_pairs(8), loss=loss, tau_learning_rate=0.05)
    optimizer = trainer.create_optimizer()
    tau_param = loss.loss.temperature.log_tau
    groups = [g for g in optimizer.param_groups if any(p is tau_param for p in g["params"])]
    assert len(groups) == 1
    assert groups[0]["lr"] == 0.05 and groups[0]["weight_decay"] == 0.0
    others = [g for g in optimizer.param_groups if g is not groups[0] and g["params"]]
    assert any(g["weight_decay"] == 0.01 for g in others) and all(g.get("lr", 2e-5) == 2e-5 for g in others)


def test_adapter_rejects_wrong_layout(tiny):
    loss = STLoss(tiny, "mse")
    feats = [tiny.preprocess(["a"]), tiny.preprocess(["b"])]
    with pytest.raises(ValueError, match="label"):
        loss(feats, None)
    with pytest.raises(ValueError, match="two text columns"):
        loss(feats + feats, torch.ones(1))
