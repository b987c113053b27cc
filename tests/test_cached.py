"""Gradient caching (STLoss with mini_batch_size): same loss and same gradients as the plain STLoss on the same batch."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainingArguments
from sentence_transformers.base.losses.gradcache import _create_minibatch

from bscl.losses import STLoss, text_ids
from bscl.losses.modules import build_loss
from bscl.models import load_model
from bscl.training import BSCLTrainer

QUERIES = [
    "red cat", "blue dog", "red cat", "green bird sings", "old tree", "a big house", "blue dog",
    "fast car", "sad cat sleeps", "happy dog", "new house", "red cat", "small bird", "slow car runs",
]  # fmt: skip
ANSWERS = [
    "a red cat", "the blue dog", "a red kitten", "green bird", "an old tree", "big house", "a dog",
    "car fast", "the cat sleeps", "a happy dog", "house new", "cat red", "a bird", "a slow car",
]  # fmt: skip
LABELS = [1.0, 0.9, 0.2, 1.0, 0.7, 0.0, 0.8, 1.0, 0.6, 0.3, 1.0, 0.9, 0.1, 1.0]

# every in-batch loss, with the options that touch the whole batch
CASES = {
    "bsc": ("bsc", {"tau": 0.1}),
    "bsc-labels-dups-coordinate-tau": (
        "bsc",
        {
            "tau": 1.0,
            "use_labels": True,
            "threshold": 0.6,
            "duplicates": True,
            "normalization": "coordinate",
            "trainable_tau": True,
        },
    ),  # fmt: skip
    "bsc-alpha-sum-zscore": (
        "bsc",
        {
            "tau": 0.2,
            "trainable_tau": True,
            "tau_parametrization": "alpha",
            "combine": "sum",
            "normalization": "zscore",
        },
    ),  # fmt: skip
    "combo-dups-tau": ("combo", {"tau": 0.1, "mu": 0.5, "duplicates": True, "trainable_tau": True}),
    "softcse-weight": ("softcse-weight", {"tau": 0.1, "beta": -1.0, "symmetric": True, "duplicates": True}),
    "softcse-temperature": ("softcse-temperature", {"tau": 0.1, "gamma": 0.5, "trainable_tau": True}),
    "focal-infonce": ("focal-infonce", {"tau": 0.1, "use_labels": True, "trainable_tau": True}),
}


@pytest.fixture(scope="module")
def tiny():
    """Float64 and eval mode (no dropout): mini-batches trim their padding, which changes float32
    round-off (~1e-7 on the embeddings, amplified to ~1e-4 on gradients of size ~20 by the coordinate
    normalization); in float64 the round-off is far below the 1e-6 tolerance, so any difference is a bug."""
    model = load_model("tiny", seed=0).double()
    model.eval()
    return model


def _features(model):
    # fresh dicts on every call: the model writes its outputs into the feature dicts
    return [model.preprocess(QUERIES), model.preprocess(ANSWERS)]


def _grads(model, loss) -> dict[str, torch.Tensor]:
    named = dict(model.named_parameters())
    named.update({f"loss.{n}": p for n, p in loss.loss.named_parameters()})
    return {n: p.grad.detach().clone() for n, p in named.items() if p.grad is not None}


def _run(model, loss, labels) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss.loss.zero_grad(set_to_none=True)
    value = loss(_features(model), labels)
    value.backward()
    return value.detach(), _grads(model, loss)


def _assert_same(
    got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], atol: float = 1e-6, rtol: float = 1e-6
) -> None:
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=atol, rtol=rtol, msg=name)


@pytest.mark.parametrize("case", list(CASES))
def test_cached_equals_plain_loss_and_gradients(tiny, case):
    name, kwargs = CASES[case]
    labels = torch.tensor(LABELS, dtype=torch.float64)
    plain = STLoss(tiny, build_loss(name, **kwargs).double())
    want_value, want_grads = _run(tiny, plain, labels)
    assert any(n.startswith("loss.") for n in want_grads) == kwargs.get("trainable_tau", False)
    for mini_batch_size in (1, 4, 64):
        cached = STLoss(tiny, build_loss(name, **kwargs).double(), mini_batch_size=mini_batch_size)
        value, grads = _run(tiny, cached, labels)
        torch.testing.assert_close(value, want_value, atol=1e-9, rtol=1e-9)
        _assert_same(grads, want_grads)


def test_duplicates_are_found_on_the_full_batch(tiny):
    """Mini-batches of 1 text would make every text unique if the ids were computed per mini-batch.

    (Focal-InfoNCE: a duplicate's answer turns from a negative logit s (s + m) / tau into a positive
    one s^2 / tau. For BSC, duplicates with identical eval-mode embeddings leave the value unchanged:
    the averaged positive terms of the duplicate rows are equal.)
    """
    kwargs = {"tau": 0.1, "duplicates": True, "use_labels": True, "symmetric": True}
    labels = torch.tensor(LABELS, dtype=torch.float64)
    want, _ = _run(tiny, STLoss(tiny, build_loss("focal-infonce", **kwargs)), labels)
    got, _ = _run(tiny, STLoss(tiny, build_loss("focal-infonce", **kwargs), mini_batch_size=1), labels)
    no_dups, _ = _run(
        tiny, STLoss(tiny, build_loss("focal-infonce", **{**kwargs, "duplicates": False})), labels
    )
    assert not torch.allclose(want, no_dups)  # the batch does have duplicates that change the loss
    torch.testing.assert_close(got, want)


def test_dropout_replays_the_first_pass(tiny):
    """Train mode: the cached gradient is the gradient of the loss on the first pass's embeddings.

    Reference: the plain loss on embeddings computed mini-batch by mini-batch from the same seed (the
    first pass's dropout masks). Without RNG replay, the second pass draws other masks and the
    gradients differ (checked by the last assertion).
    """
    mini_batch_size = 4
    loss_kwargs = {"tau": 0.1, "trainable_tau": True}
    tiny.train()
    try:
        cached = STLoss(tiny, build_loss("bsc", **loss_kwargs), mini_batch_size=mini_batch_size)
        torch.manual_seed(123)
        value, grads = _run(tiny, cached, None)

        plain = STLoss(tiny, build_loss("bsc", **loss_kwargs))
        tiny.zero_grad(set_to_none=True)
        torch.manual_seed(123)
        features = _features(tiny)
        columns = []
        for feature in features:
            m = feature["input_ids"].shape[0]
            parts = [
                tiny(_create_minibatch(feature, b, b + mini_batch_size))["sentence_embedding"]
                for b in range(0, m, mini_batch_size)
            ]
            columns.append(torch.cat(parts))  # (m, d)
        want_value = plain.loss_from_embeddings(columns[0], columns[1], None, features)
        want_value.backward()
        want = _grads(tiny, plain)
        torch.testing.assert_close(value, want_value.detach())
        _assert_same(grads, want)

        # a second run from another seed: other dropout masks, other gradients (dropout is active)
        torch.manual_seed(7)
        _, other = _run(tiny, cached, None)
        assert not torch.allclose(other["0.model.embeddings.word_embeddings.weight"],
                                  want["0.model.embeddings.word_embeddings.weight"], atol=1e-5)  # fmt: skip
    finally:
        tiny.eval()


def test_no_grad_evaluation_returns_the_plain_value(tiny):
    kwargs = {"tau": 0.1, "duplicates": True, "trainable_tau": True}
    labels = torch.tensor(LABELS, dtype=torch.float64)
    with torch.no_grad():
        want = STLoss(tiny, build_loss("bsc", **kwargs))(_features(tiny), labels)
        got = STLoss(tiny, build_loss("bsc", **kwargs), mini_batch_size=3)(_features(tiny), labels)
    torch.testing.assert_close(got, want)


def test_embedding_callback_gets_the_full_batch_once(tiny):
    calls = []
    cached = STLoss(tiny, "bsc", mini_batch_size=4, embedding_callback=lambda q, a: calls.append((q, a)))
    cached(_features(tiny), None).backward()
    assert len(calls) == 1 and calls[0][0].shape == (len(QUERIES), 32) and not calls[0][0].requires_grad
    with torch.no_grad():  # evaluation batches are not training embeddings
        cached(_features(tiny), None)
    assert len(calls) == 1


def test_text_ids_do_not_depend_on_padding_or_batch(tiny):
    a = text_ids(tiny.preprocess(["red cat", "a much longer sentence about a cat"]))
    b = text_ids(tiny.preprocess(["red cat"]))
    c = text_ids(tiny.preprocess(["blue dog", "red cat", "red  cat"]))
    assert a.dtype == torch.int64 and a[0] == b[0] == c[1]
    assert len({int(a[0]), int(a[1]), int(c[0])}) == 3


def test_bad_mini_batch_size(tiny):
    with pytest.raises(ValueError, match="mini_batch_size"):
        STLoss(tiny, "bsc", mini_batch_size=0)


def _no_dropout_tiny():
    model = load_model("tiny", seed=0)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


@pytest.mark.slow
def test_trainer_with_cached_loss_matches_plain_training(tmp_path):
    """A few BSCLTrainer steps (gradient accumulation 2, trainable tau): same weights and tau."""
    data = Dataset.from_dict({"anchor": QUERIES * 2, "positive": ANSWERS * 2, "label": LABELS * 2})
    results = []
    for cached in (False, True):
        model = _no_dropout_tiny()
        inner = build_loss("combo", tau=0.1, mu=0.5, duplicates=True, trainable_tau=True)
        loss = STLoss(model, inner, mini_batch_size=3) if cached else STLoss(model, inner)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(tmp_path / str(cached)),
            max_steps=3,
            per_device_train_batch_size=7,
            gradient_accumulation_steps=2,
            learning_rate=1e-3,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=0,
            disable_tqdm=True,
        )
        trainer = BSCLTrainer(model=model, args=args, train_dataset=data, loss=loss, tau_learning_rate=0.05)
        trainer.train()
        losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
        results.append((dict(model.state_dict()), inner.temperature.value, losses))
    (w_plain, tau_plain, l_plain), (w_cached, tau_cached, l_cached) = results
    assert tau_plain != pytest.approx(0.1, abs=1e-4)  # the temperature did train
    assert tau_cached == pytest.approx(tau_plain, abs=1e-6)
    assert l_cached == pytest.approx(l_plain, abs=1e-5)
    for name, value in w_plain.items():
        torch.testing.assert_close(w_cached[name], value, atol=1e-5, rtol=1e-5, msg=name)


def test_mini_batch_size_turns_gradient_caching_on(tiny):
    plain = STLoss(tiny, "bsc", tau=0.05)
    cached = STLoss(tiny, "bsc", mini_batch_size=8, tau=0.05)
    assert not plain.uses_gradient_cache and cached.uses_gradient_cache and cached.mini_batch_size == 8
    assert (
        not plain.gather_across_processes
        and STLoss(tiny, "bsc", gather_across_processes=True).gather_across_processes
    )
    assert cached.loss.tau == pytest.approx(0.05)


def test_one_mini_batch_runs_the_plain_loss_without_a_second_forward(tiny):
    calls = []
    handle = tiny.register_forward_hook(lambda *_: calls.append(1))
    try:
        STLoss(tiny, "bsc", mini_batch_size=len(QUERIES))(_features(tiny), None).backward()
        assert len(calls) == 2  # one forward per column
        calls.clear()
        STLoss(tiny, "bsc", mini_batch_size=len(QUERIES) - 1)(_features(tiny), None).backward()
        assert len(calls) == 8  # 2 mini-batches per column, embedded twice
    finally:
        handle.remove()


# --------------------------------------------------------------------------------------------------
# extra negative text columns (anchor, positive, negative_1..k)
# --------------------------------------------------------------------------------------------------
# the second negative column repeats answers of other rows ("a red cat" is row 0's positive answer)
NEGATIVES_1 = [
    "a green tree", "the red dog", "a blue cat", "old bird", "tree young", "small hut", "a cat",
    "car slow", "the dog barks", "a sad dog", "house old", "dog blue", "a fish", "a fast car",
]  # fmt: skip
NEGATIVES_2 = ["a red cat", *ANSWERS[2:], "a red cat"][: len(ANSWERS)]

NEGATIVE_CASES = {
    "bsc-labels-dups-coordinate-tau": (
        "bsc",
        {"tau": 1.0, "threshold": 0.6, "normalization": "coordinate", "trainable_tau": True},
    ),
    "combo-dups": ("combo", {"tau": 0.1, "mu": 0.5}),
    "pearson-combo": ("pearson-combo", {"tau": 0.1, "mu": 0.5}),
    "focal-infonce-symmetric": ("focal-infonce", {"tau": 0.1, "symmetric": True, "trainable_tau": True}),
    "softcse-weight": ("softcse-weight", {"tau": 0.1, "beta": -1.0, "symmetric": True}),
}


def _features_with_negatives(model):
    return [model.preprocess(t) for t in (QUERIES, ANSWERS, NEGATIVES_1, NEGATIVES_2)]


def _run_negatives(model, loss, labels):
    model.zero_grad(set_to_none=True)
    loss.loss.zero_grad(set_to_none=True)
    value = loss(_features_with_negatives(model), labels)
    value.backward()
    return value.detach(), _grads(model, loss)


@pytest.mark.parametrize("case", list(NEGATIVE_CASES))
def test_negative_columns_plain_equals_functional_and_cached(tiny, case):
    from bscl.losses import functional as F

    name, kwargs = NEGATIVE_CASES[case]
    labels = torch.tensor(LABELS, dtype=torch.float64)
    plain = STLoss(tiny, build_loss(name, **kwargs).double())
    want_value, want_grads = _run_negatives(tiny, plain, labels)
    # the plain adapter = the functional core on the embedded columns with (m, k, d) negatives
    features = _features_with_negatives(tiny)
    with torch.no_grad():
        q, a, n1, n2 = (tiny(f)["sentence_embedding"] for f in features)
    fn = {
        "bsc": F.bsc_loss,
        "combo": F.combo_loss,
        "pearson-combo": F.pearson_combo_loss,
        "focal-infonce": F.focal_infonce_loss,
        "softcse-weight": F.softcse_weight_loss,
    }[name]
    options = {k: v for k, v in kwargs.items() if k not in ("tau", "trainable_tau")}
    ids = [text_ids(f) for f in _features_with_negatives(tiny)]
    label_args = (labels,) if name in ("combo", "pearson-combo") else ()
    label_kw = {} if label_args else {"labels": labels}
    direct = fn(
        q, a, *label_args, tau=kwargs["tau"], **label_kw, q_ids=ids[0], a_ids=ids[1],
        negatives=torch.stack([n1, n2], dim=1), neg_ids=torch.stack(ids[2:], dim=1), **options,
    )  # fmt: skip
    torch.testing.assert_close(want_value, direct, atol=1e-6, rtol=1e-6)  # float32 log-tau parameter
    # without the negative columns the value differs (they are really used)
    pairs_only = STLoss(tiny, build_loss(name, **kwargs).double())(_features(tiny), labels)
    assert not torch.allclose(pairs_only.detach(), want_value)
    for mini_batch_size in (1, 5, 64):
        cached = STLoss(tiny, build_loss(name, **kwargs).double(), mini_batch_size=mini_batch_size)
        value, grads = _run_negatives(tiny, cached, labels)
        torch.testing.assert_close(value, want_value, atol=1e-9, rtol=1e-9)
        _assert_same(grads, want_grads)


@pytest.mark.parametrize("name", ["mse", "triplet", "pearson"])
def test_pair_losses_reject_negative_columns_clearly(tiny, name):
    labels = torch.tensor(LABELS, dtype=torch.float64)
    with pytest.raises(ValueError, match="exactly two text columns.*the data has 4"):
        STLoss(tiny, build_loss(name))(_features_with_negatives(tiny), labels)


def test_one_text_column_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="needs two text columns"):
        STLoss(tiny, build_loss("bsc"))([tiny.preprocess(QUERIES)], None)
