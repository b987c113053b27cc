"""The batch sampler factory inside a real SentenceTransformerTrainer (tiny random model, CPU)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset

from bscl.batching import make_batch_sampler

pytestmark = pytest.mark.slow


def test_trainer_epochs_encoder_and_embedding_cache(tmp_path: Any) -> None:
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from bscl.models import load_model

    model = load_model("tiny")
    for module in model.modules():  # no dropout: stored rows must equal eval-mode embeddings
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    n = 48
    words = ["cat", "dog", "sun", "rain", "tree", "car", "boat"]
    ds = Dataset.from_dict(
        {
            "q": [f"{words[i % 7]} {words[(i * 3) % 7]} number {i}" for i in range(n)],
            "a": [f"reply {i} on {words[(i * 5) % 7]}" for i in range(n)],
        }
    )

    factory = make_batch_sampler("example", group_size=4, n_candidates=32, reuse_embeddings=True)
    encode_calls: list[int] = []
    base_encoder = None

    class RecordingMNRL(MultipleNegativesRankingLoss):
        """MNRL that hands each training batch's embeddings to the cache, like bscl's loss adapter."""

        def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Any) -> Any:
            features = list(sentence_features)
            emb = [self.model(f)["sentence_embedding"] for f in features]
            if self.model.training:
                factory.embedding_cache(emb[0].detach(), emb[1].detach())
            return self.compute_loss_from_embeddings(emb, labels)

    factory.set_model(model, batch_size=32)
    base_encoder = factory.encoder

    def counting(texts: list[str]) -> np.ndarray:
        encode_calls.append(len(texts))
        assert base_encoder is not None
        return base_encoder(texts)

    factory.encoder = counting
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        learning_rate=1e-7,
        batch_sampler=factory,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        seed=3,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=RecordingMNRL(model))
    trainer.train()

    sampler = factory.last_sampler
    cache = factory.embedding_cache
    assert sampler is not None and cache is not None
    assert sampler.seed == 3  # the trainer's seed
    assert sampler.epoch == 1  # set_epoch reached the sampler (through accelerate's wrapper)
    assert encode_calls == [n]  # epoch 1 encodes once; epoch 2 reuses the training embeddings
    assert sampler.stats["n_reused"] == n
    assert cache.mismatches == 0
    assert (cache.seen_epoch[0] == 1).all()
    # the stored row of each example is closest to that example's own (eval-mode) embedding
    rows, _ = cache.lookup(0)
    ref = base_encoder(list(ds["q"]))
    assert rows is not None
    sim = rows @ ref.T  # (n, n)
    assert (np.argmax(sim, axis=1) == np.arange(n)).all()
    assert np.diag(sim).min() > 0.99
