"""Device-side text ids (bscl.losses.hashing): padding-independent, batch-independent, collision-free
on many sequences, no overflow, and equal to a pure-Python reference of the same formula."""

from __future__ import annotations

import torch

from bscl.losses.hashing import BASES, MODULI, sequence_hash, text_ids


def reference(tokens: list[int]) -> int:
    """The module docstring's formula with Python integers (no overflow possible)."""
    h = [
        sum((t + 1) * pow(base, k, mod) for k, t in enumerate(tokens)) % mod
        for base, mod in zip(BASES, MODULI, strict=True)
    ]
    return h[0] * 2**31 + h[1]


def padded(rows: list[list[int]], left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.int64)
    mask = torch.zeros(len(rows), width, dtype=torch.int64)
    for i, r in enumerate(rows):
        sl = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, sl] = torch.tensor(r)
        mask[i, sl] = 1
    return ids, mask


def test_matches_the_python_reference_including_large_token_ids():
    rows = [[5, 9, 2], [0, 0], [0], [250_000, 2**31 - 2, 7], list(range(300))]
    ids, mask = padded(rows)
    assert sequence_hash(ids, mask).tolist() == [reference(r) for r in rows]


def test_ids_ignore_padding_side_and_batch_and_dtype():
    rows = [[3, 4, 5], [3, 4], [3, 4, 5, 0], [9]]
    right = sequence_hash(*padded(rows))
    left = sequence_hash(*padded(rows, left=True))
    alone = torch.cat([sequence_hash(*padded([r])) for r in rows])
    ids32, mask = padded(rows)
    assert right.tolist() == left.tolist() == alone.tolist()
    assert sequence_hash(ids32.int(), mask.bool()).tolist() == right.tolist()
    # a trailing real 0 token is not padding: [3, 4, 5, 0] != [3, 4, 5]
    assert len(set(right.tolist())) == 4


def test_no_collisions_among_many_random_sequences():
    gen = torch.Generator().manual_seed(0)
    n, width = 100_000, 24
    ids = torch.randint(0, 30_000, (n, width), generator=gen)
    lengths = torch.randint(1, width + 1, (n,), generator=gen)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    ids = ids * mask
    unique_rows = {tuple(r[: int(k)].tolist()) for r, k in zip(ids, lengths, strict=True)}
    hashes = sequence_hash(ids, mask)
    assert len(set(hashes.tolist())) == len(unique_rows)
    assert int(hashes.min()) >= 0 and int(hashes.max()) < 2**62


def test_text_ids_on_tokenized_features_stay_on_the_device_of_the_tokens():
    features = {"input_ids": torch.tensor([[2, 7, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 0]])}
    out = text_ids(features)
    assert out.dtype == torch.int64 and out.device == features["input_ids"].device
    assert out.tolist() == [reference([2, 7, 3])]
