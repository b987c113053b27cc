"""Cost of batch construction: grouping time per strategy vs. one training epoch.

In one run:

(a) all-MiniLM-L6-v2 on STSb train pairs: one training epoch with a plain SentenceTransformerTrainer
    and MultipleNegativesRankingLoss (batch 30, max 90 tokens, the ``example`` sampler in reuse mode,
    whose loss hands each batch's embeddings to the EmbeddingCache), then, with the trained model,
    the time of one epoch's grouping for every strategy: the model-based ones both with a full
    re-encode of the training texts and with the embeddings recorded during the training epoch
    (reuse). Each is reported as a fraction of the training epoch (the epoch time excludes the
    sampler's own grouping at the start of the epoch).
(b) grouping time alone on random L2-normalised 384-d embeddings (default 10k, 100k, 1M): Algorithm 1
    with the exact index (up to ``--exact-limit``) and with the approximate (PCA + IVF) index, and
    the clusters strategy (k-means, 300 clusters).

Usage (the full run takes ~15-25 minutes on 2 cores)::

    nohup python benchmarks/shuffle_cost.py --out /tmp/shuffle_cost.json > /tmp/shuffle_cost.log 2>&1 &
    python benchmarks/shuffle_cost.py --train-subset 600 --sizes 10000 --skip-train  # quick check
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bscl.batching import (
    STRATEGIES,
    KnnIndex,
    example_order,
    make_batch_sampler,
    model_encoder,
    set_faiss_threads,
)
from bscl.batching.grouping import cluster_shingles, group_by_shingles
from bscl.paths import data_root


def read_stsb(path: Path) -> tuple[list[str], list[str], list[float]]:
    """STSb TSV (no header, no quoting): score in column 4, sentences in columns 5 and 6."""
    s1, s2, scores = [], [], []
    with path.open(encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 7:
                continue
            scores.append(float(row[4]))
            s1.append(row[5])
            s2.append(row[6])
    return s1, s2, scores


def load_minilm(max_seq_length: int) -> Any:
    from bscl.models import load_model

    return load_model("minilm", max_seq_length=max_seq_length)


def part_a(args: argparse.Namespace) -> dict[str, Any]:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    s1, s2, _ = read_stsb(data_root() / "stsb" / "sts-train.csv")
    if args.train_subset:
        s1, s2 = s1[: args.train_subset], s2[: args.train_subset]
    ds = Dataset.from_dict({"sentence1": s1, "sentence2": s2})
    n = len(ds)
    model = load_minilm(args.max_seq_length)
    torch.manual_seed(args.seed)

    factory = make_batch_sampler("example", group_size=args.group_size, reuse_embeddings=True)
    factory.set_model(model, batch_size=args.encode_batch_size)
    cache = factory.embedding_cache
    assert cache is not None
    callback_s = [0.0]

    class RecordingMNRL(MultipleNegativesRankingLoss):
        """MNRL that records each training batch's embeddings (what bscl's loss adapter does)."""

        def forward(self, sentence_features: Any, labels: Any) -> Any:
            features = list(sentence_features)
            emb = [self.model(f)["sentence_embedding"] for f in features]
            if self.model.training:
                t0 = time.perf_counter()
                cache(emb[0].detach(), emb[1].detach())
                callback_s[0] += time.perf_counter() - t0
            return self.compute_loss_from_embeddings(emb, labels)

    out_dir = Path(args.tmp_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir),
        num_train_epochs=1,
        per_device_train_batch_size=args.batch_size,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        batch_sampler=factory,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        seed=args.seed,
        use_cpu=True,
        dataloader_drop_last=False,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=train_args, train_dataset=ds, loss=RecordingMNRL(model)
    )
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    sampler = factory.last_sampler
    assert sampler is not None
    first_grouping = dict(sampler.stats)
    epoch_s = wall - first_grouping["total_s"]
    print(
        json.dumps(
            {
                "part": "a/train",
                "n": n,
                "train_wall_s": wall,
                "epoch0_grouping": first_grouping,
                "epoch_s": epoch_s,
                "callback_s": callback_s[0],
            }
        ),
        flush=True,
    )
    assert cache.mismatches == 0 and bool((cache.seen_epoch[0] == 0).all())

    rows: list[dict[str, Any]] = [
        {
            "strategy": "(recording callback, whole epoch)",
            "mode": "reuse",
            "encode_s": 0.0,
            "group_s": callback_s[0],
            "total_s": callback_s[0],
        }
    ]
    encoder = model_encoder(model, batch_size=args.encode_batch_size)
    for strategy, cls in STRATEGIES.items():
        modes = ["re-encode", "reuse"] if cls.needs_encoder else ["-"]
        for mode in modes:
            opts: dict[str, Any] = {"group_size": args.group_size, "seed": args.seed}
            if mode == "reuse":
                opts.update(reuse_embeddings=True, embedding_cache=cache)
            elif mode == "re-encode":
                opts["encoder"] = encoder
            s = make_batch_sampler(strategy, **opts)(ds, batch_size=args.batch_size, drop_last=False)
            s.set_epoch(1)
            t1 = time.perf_counter()
            order = s.epoch_order()
            total = time.perf_counter() - t1
            assert np.array_equal(np.sort(order), np.arange(n))
            row = {
                "strategy": strategy,
                "mode": mode,
                "encode_s": s.stats.get("encode_s", 0.0),
                "group_s": total - s.stats.get("encode_s", 0.0),
                "total_s": total,
                "n_encoded": s.stats.get("n_encoded", 0.0),
            }
            rows.append(row)
            print(json.dumps({"part": "a/group", **row}), flush=True)
    for row in rows:
        row["pct_epoch"] = 100.0 * row["total_s"] / epoch_s
    return {"n": n, "epoch_s": epoch_s, "train_wall_s": wall, "epoch0_grouping": first_grouping, "rows": rows}


def part_b(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for n in [int(x) for x in args.sizes.split(",") if x]:
        rng = np.random.default_rng(args.seed)
        x = rng.standard_normal((n, 384), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        methods = (["exact"] if n <= args.exact_limit else []) + ["ivf"]
        for method in methods:
            t0 = time.perf_counter()
            index = KnnIndex(x, method=method, seed=args.seed)
            t1 = time.perf_counter()
            order, sizes = example_order(
                x,
                args.group_size,
                np.random.default_rng(args.seed),
                n_candidates=args.n_candidates,
                index=index,
                return_groups=True,
            )
            t2 = time.perf_counter()
            assert np.array_equal(np.sort(order), np.arange(n))
            row = {
                "n": n,
                "strategy": "example",
                "index": method,
                "build_s": t1 - t0,
                "group_s": t2 - t1,
                "total_s": t2 - t0,
                "groups": int(sizes.size),
                "singletons": int(np.sum(sizes == 1)),
                "mean_group": float(sizes.mean()),
            }
            results.append(row)
            print(json.dumps({"part": "b", **row}), flush=True)
        t0 = time.perf_counter()
        g = np.random.default_rng(args.seed)
        order = group_by_shingles(cluster_shingles(x, 300, g), args.group_size, g)
        row = {"n": n, "strategy": "clusters(300)", "index": "k-means", "total_s": time.perf_counter() - t0}
        results.append(row)
        print(json.dumps({"part": "b", **row}), flush=True)
        del x
    return results


def markdown(res: dict[str, Any]) -> str:
    lines = []
    a = res.get("a")
    if a:
        lines += [
            f"(a) STSb train, n = {a['n']} pairs, all-MiniLM-L6-v2, batch {res['args']['batch_size']}: "
            f"one training epoch = {a['epoch_s']:.1f} s.",
            "",
            "| strategy | embeddings | encode (s) | grouping (s) | total (s) | % of epoch |",
            "|---|---|---|---|---|---|",
        ]
        for r in a["rows"]:
            lines.append(
                f"| {r['strategy']} | {r['mode']} | {r['encode_s']:.2f} | {r['group_s']:.3f} | "
                f"{r['total_s']:.3f} | {r['pct_epoch']:.2f}% |"
            )
        lines.append("")
    b = res.get("b")
    if b:
        lines += [
            "(b) grouping alone, random L2-normalised 384-d embeddings, group size "
            f"{res['args']['group_size']}, n_candidates {res['args']['n_candidates']}:",
            "",
            "| n | strategy | index | build (s) | grouping (s) | total (s) | groups | singletons |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in b:
            lines.append(
                f"| {r['n']:,} | {r['strategy']} | {r['index']} | {r.get('build_s', float('nan')):.2f} | "
                f"{r.get('group_s', float('nan')):.2f} | {r['total_s']:.2f} | {r.get('groups', '')} | "
                f"{r.get('singletons', '')} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-subset", type=int, default=0, help="use only the first N STSb pairs (0 = all)")
    p.add_argument("--skip-train", action="store_true", help="skip part (a)")
    p.add_argument("--sizes", default="10000,100000,1000000", help="part (b) sizes ('' to skip)")
    p.add_argument("--exact-limit", type=int, default=100_000, help="largest n for the exact index in (b)")
    p.add_argument("--batch-size", type=int, default=30)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--n-candidates", type=int, default=500)
    p.add_argument("--max-seq-length", type=int, default=90)
    p.add_argument("--encode-batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tmp-dir", default="/tmp/bscl_shuffle_cost")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()
    threads = set_faiss_threads(args.threads)
    torch.set_num_threads(threads)
    res: dict[str, Any] = {
        "args": vars(args),
        "machine": {"cpu_threads": threads, "python": platform.python_version(), "torch": torch.__version__},
        "loadavg_start": os.getloadavg(),
    }
    if not args.skip_train:
        res["a"] = part_a(args)
    if args.sizes:
        res["b"] = part_b(args)
    res["loadavg_end"] = os.getloadavg()
    md = markdown(res)
    md += f"\n\nload average (1, 5, 15 min) at start {res['loadavg_start']}, at end {res['loadavg_end']}"
    print(md, flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
