"""Text ids from token sequences, computed on the tokens' device (no host sync per training step).

Two polynomial hashes of the unpadded token sequence ``t_0 .. t_{n-1}`` (the positions where the
attention mask is 1, numbered in order, so left or right padding does not matter)::

    h_r = sum_k (t_k + 1) * P_r^k  mod M_r          r = 1, 2;  M_1 = 2^31 - 1, M_2 = 2^31 - 19

    id = h_1 * 2^31 + h_2                            (int64, in [0, 2^62))

Every product ``(t + 1 mod M) * (P^k mod M)`` is below 2^62 and every row sum of up to 2^32 such
reduced terms stays below 2^63, so the int64 arithmetic never overflows and the ids are identical on
the CPU and on any GPU, in every batch and process (the duplicate-aware losses compare ids gathered
across ranks). Two different sequences of length <= L collide with probability about ``(L / M)^2``
per pair (Schwartz-Zippel for each modulus; +1 keeps trailing zero tokens significant).

Hand-written because no maintained library hashes the rows of a tensor on its device.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

MODULI = (2**31 - 1, 2**31 - 19)
BASES = (1_000_003, 998_244_353 % (2**31 - 19))
_POWERS: dict[tuple[int, str], Tensor] = {}


def _powers(length: int, device: torch.device) -> Tensor:
    """``(2, length)`` int64: ``P_r^k mod M_r``; built once per device and grown as needed."""
    key = (0, str(device))
    table = _POWERS.get(key)
    if table is None or table.shape[1] < length:
        size = max(length, 512)
        rows = []
        for base, mod in zip(BASES, MODULI, strict=True):
            row, x = [], 1
            for _ in range(size):
                row.append(x)
                x = x * base % mod
            rows.append(row)
        table = torch.tensor(rows, dtype=torch.int64, device=device)  # (2, size)
        _POWERS[key] = table
    return table[:, :length]


def sequence_hash(input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """``(m,)`` int64 ids of the rows of ``input_ids`` ``(m, L)``: equal for equal unpadded sequences."""
    tokens = input_ids.detach().to(torch.int64)  # (m, L)
    keep = (
        torch.ones_like(tokens, dtype=torch.bool)
        if attention_mask is None
        else attention_mask.detach().bool()
    )  # (m, L)
    position = (keep.cumsum(dim=1) - 1).clamp_min(0)  # (m, L): index among the kept tokens
    powers = _powers(tokens.shape[1], tokens.device)  # (2, L)
    ids = torch.zeros(tokens.shape[0], dtype=torch.int64, device=tokens.device)
    for r, mod in enumerate(MODULI):
        term = (tokens + 1).remainder(mod) * powers[r][position]  # (m, L), each < 2^62
        term = term.remainder(mod) * keep  # padding adds nothing
        h = term.sum(dim=1).remainder(mod)  # (m,)
        ids = ids * (2**31) + h
    return ids  # (m,)


def text_ids(features: dict[str, Any]) -> Tensor:
    """``(m,)`` int64 ids such that rows with identical token sequences (identical texts) share an id.

    See the module docstring for the hash. Ids are global (equal on every process and in every batch
    for the same text); texts that only differ after the truncation length get the same id: the
    model sees them as equal.
    """
    return sequence_hash(features["input_ids"], features.get("attention_mask"))
