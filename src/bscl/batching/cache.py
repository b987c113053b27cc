"""Reuse of the embeddings computed by the training steps themselves, for next epoch's grouping.

Re-encoding the whole training set at every epoch costs the paper about 8% of training time
(Sec. 5.2). The training steps already compute an embedding of every example they see; an
:class:`EmbeddingCache` records them by dataset index so that the next epoch's grouping
(``example``/``clusters``/``neighbours``) needs only the kNN search. Examples never seen (epoch 1,
or dropped by ``drop_last``) fall back to one encode pass.

How the indices are matched to the embeddings, without touching the data pipeline:

1. the batch sampler calls :meth:`EmbeddingCache.start_epoch` when an epoch's iteration starts and
   :meth:`EmbeddingCache.push` with the indices of each batch *this rank* will train on, at the
   moment it yields it;
2. the loss calls the cache (``cache(q_emb, a_emb)``) once per training micro-batch, in order; the
   cache pops the oldest pushed indices and stores the rows.

The first-in-first-out queue makes this robust to a data loader that fetches batches ahead
(accelerate's ``DataLoaderShard`` prefetches one batch; worker processes prefetch more) and to
gradient accumulation (each micro-batch is one call). The loss must call it only for training
batches (not for evaluation-loss batches), and exactly once per batch.

The rows stay on the loss's device until they are read (:meth:`lookup`, :meth:`synchronize`, the
``embeddings`` / ``seen_epoch`` attributes), which copies them to the host in one transfer per epoch
instead of one per training step (a device-to-host copy blocks until the step's kernels finish).

Caveats: the stored rows come from the model at the time of each step (the first batches of an
epoch are older than the last ones) and in training mode (with dropout). Resuming from a checkpoint
in the middle of an epoch skips batches the sampler still yields: call :meth:`EmbeddingCache.skip_batches`
first, or the queue is out of step for that epoch (a size mismatch is detected and recording then
stops until the next epoch, but equal sizes are not).

Checkpointing: :meth:`state_dict` / :meth:`load_state_dict` (plain numpy arrays, for ``np.savez``)
hold the recorded rows and epochs; :class:`bscl.training.trainer.EmbeddingCacheCallback` saves them
with every trainer checkpoint and restores them (and the skip count) on resume.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

logger = logging.getLogger(__name__)

Element = Literal["first", "second", "both"]


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach()
        if hasattr(x, "float"):
            x = x.float()
        x = x.cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _on_device(x: Any) -> Any:
    """Detached float32 L2-normalised rows, left on their device (a tensor) or as NumPy (an array)."""
    if hasattr(x, "detach"):
        import torch.nn.functional as F

        return F.normalize(x.detach().float(), dim=1, eps=1e-12)  # (m, d), x / max(||x||, 1e-12)
    import torch

    return torch.from_numpy(_normalise(_to_numpy(x)))


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # (m, 1)
    return x / np.maximum(norms, 1e-12)


class EmbeddingCache:
    """Per-example embeddings recorded during training, by dataset index (see the module docstring).

    Args:
        num_examples: dataset size (can be set later by the sampler with :meth:`bind`).
        element: which embedding to keep: ``"first"`` (the query text, ``q_emb``), ``"second"``
            (``a_emb``) or ``"both"``. A sampler that groups by the first/second text binds the
            matching element.

    Attributes:
        embeddings: ``{0: (n, d) float32, 1: (n, d) float32}`` L2-normalised rows (allocated lazily).
        seen_epoch: ``{0: (n,) int64, 1: ...}``: the epoch in which each row was last recorded, -1 if
            never.
    """

    def __init__(self, num_examples: int | None = None, element: Element = "first") -> None:
        self.element: Element = element
        self.num_examples: int | None = None
        self._embeddings: dict[int, np.ndarray] = {}
        self._seen_epoch: dict[int, np.ndarray] = {}
        #: recorded on the device, not yet copied: (element, indices, normalised rows, epoch)
        self._staged: list[tuple[int, np.ndarray, Any, int]] = []
        self._pending: deque[np.ndarray] = deque()
        self.epoch = 0
        self._recording = True
        self.calls = 0
        self.mismatches = 0
        self._skip = 0
        if num_examples is not None:
            self.bind(num_examples)

    @property
    def embeddings(self) -> dict[int, np.ndarray]:
        self.flush()
        return self._embeddings

    @embeddings.setter
    def embeddings(self, value: dict[int, np.ndarray]) -> None:
        self.flush()
        self._embeddings = value

    @property
    def seen_epoch(self) -> dict[int, np.ndarray]:
        self.flush()
        return self._seen_epoch

    @seen_epoch.setter
    def seen_epoch(self, value: dict[int, np.ndarray]) -> None:
        self.flush()
        self._seen_epoch = value

    def flush(self) -> None:
        """Copy the rows recorded on the device into the host arrays (one transfer per element)."""
        if not self._staged:
            return
        import torch

        staged, self._staged = self._staged, []
        for element in sorted({e for e, *_ in staged}):
            parts = [(i, r, ep) for e, i, r, ep in staged if e == element]
            indices = np.concatenate([i for i, _, _ in parts])
            epochs = np.concatenate([np.full(i.size, ep, dtype=np.int64) for i, _, ep in parts])
            rows = torch.cat([r for _, r, _ in parts]).cpu().numpy()  # (sum m, d): the one host copy
            self._store(element, indices, rows, epochs)

    # ---- wiring (sampler side) -----------------------------------------------------------------

    def bind(self, num_examples: int, element: Element | None = None) -> None:
        """Attach to a dataset of ``num_examples`` rows (resets the storage if the size changes)."""
        if element is not None:
            self.element = element
        if self.num_examples != num_examples:
            self._staged.clear()
            self.num_examples = int(num_examples)
            self.embeddings.clear()
            self.seen_epoch = {}
        for e in self._elements():
            self.seen_epoch.setdefault(e, np.full(self.num_examples, -1, dtype=np.int64))

    def _elements(self) -> tuple[int, ...]:
        return {"first": (0,), "second": (1,), "both": (0, 1)}[self.element]

    def start_epoch(self, epoch: int) -> None:
        """Start recording an epoch: drops indices pushed but never consumed (stored rows stay)."""
        self._pending.clear()
        self.epoch = int(epoch)
        self._recording = True

    def push(self, indices: Sequence[int] | np.ndarray) -> None:
        """Queue the dataset indices of the next batch that the training loop will consume."""
        if self._skip > 0:  # batches the trainer skips when resuming mid-epoch never reach the loss
            self._skip -= 1
            return
        self._pending.append(np.asarray(indices, dtype=np.int64))

    def skip_batches(self, n: int) -> None:
        """Drop the next ``n`` pushed batches: call it before ``trainer.train(resume_from_checkpoint=...)``
        with the number of this rank's batches already trained in the resumed epoch (the trainer skips
        them with ``skip_first_batches``, so they are yielded by the sampler but never reach the loss)."""
        self._skip = max(0, int(n))

    @property
    def pending(self) -> int:
        """Batches yielded but not consumed yet (1 or 2 with a one-batch prefetch)."""
        return len(self._pending)

    # ---- checkpointing ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """The recorded rows and epochs as numpy arrays (keys ``embeddings_E``, ``seen_epoch_E``,
        ``meta`` = [num_examples, epoch]); the queue of pending batches is not part of it (a resumed
        sampler yields its batches again)."""
        state: dict[str, np.ndarray] = {
            "meta": np.array(
                [-1 if self.num_examples is None else self.num_examples, self.epoch], dtype=np.int64
            ),
            "element": np.array(self.element),
        }
        for e, rows in self.embeddings.items():
            state[f"embeddings_{e}"] = rows
        for e, seen in self.seen_epoch.items():
            state[f"seen_epoch_{e}"] = seen
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict`'s arrays (the dataset size must match the bound one)."""
        n, epoch = (int(x) for x in state["meta"])
        if self.num_examples is not None and n not in (-1, self.num_examples):
            raise ValueError(
                f"EmbeddingCache: the checkpoint holds {n} examples, the training data has {self.num_examples}"
            )
        self.element = str(state["element"])  # type: ignore[assignment]
        self.num_examples = None if n < 0 else n
        self.epoch = epoch
        self.embeddings = {int(k.rsplit("_", 1)[1]): np.asarray(v, dtype=np.float32).copy()
                           for k, v in state.items() if k.startswith("embeddings_")}  # fmt: skip
        self.seen_epoch = {int(k.rsplit("_", 1)[1]): np.asarray(v, dtype=np.int64).copy()
                           for k, v in state.items() if k.startswith("seen_epoch_")}  # fmt: skip
        self._pending.clear()
        self._recording = True

    # ---- recording (loss side) -----------------------------------------------------------------

    def __call__(self, q_emb: Any, a_emb: Any) -> None:
        """The ``embedding_callback`` of the loss: record one training batch's (m, d) embeddings."""
        self.calls += 1
        if not self._pending:
            if self._recording:
                logger.warning(
                    "EmbeddingCache: a batch's embeddings arrived with no pending batch indices "
                    "(is the cache attached to the batch sampler, and called for training batches only?); "
                    "recording stops until the next epoch"
                )
            self._recording = False
            return
        indices = self._pending.popleft()
        if not self._recording:
            return
        q = _on_device(q_emb)
        if q.shape[0] != indices.size:
            self.mismatches += 1
            logger.warning(
                "EmbeddingCache: batch of %d embeddings for %d queued indices; the queue is out of "
                "sync (resumed mid-epoch? called on evaluation batches?). Recording stops for this epoch.",
                q.shape[0],
                indices.size,
            )
            self._recording = False
            self._pending.clear()
            return
        sides = {0: q} if self.element == "first" else {}
        if self.element in ("second", "both"):
            sides[1] = _on_device(a_emb)
        if self.element == "both":
            sides[0] = q
        if self.num_examples is None:
            raise RuntimeError("EmbeddingCache.bind(num_examples) was never called")
        for e, rows in sides.items():
            self._staged.append((e, indices, rows, self.epoch))

    def _store(self, element: int, indices: np.ndarray, rows: np.ndarray, epochs: np.ndarray) -> None:
        """Write normalised host rows (later rows of the same index win, as in step order)."""
        store = self._embeddings.get(element)
        if store is None or store.shape[1] != rows.shape[1]:
            store = np.zeros((self.num_examples, rows.shape[1]), dtype=np.float32)
            self._embeddings[element] = store
            self._seen_epoch[element][:] = -1
        store[indices] = rows
        self._seen_epoch[element][indices] = epochs

    # ---- reading (next epoch's grouping) ---------------------------------------------------------

    def lookup(self, element: int = 0) -> tuple[np.ndarray | None, np.ndarray]:
        """(embeddings (n, d) or None, seen mask (n,) bool) for element 0 (first) or 1 (second)."""
        if self.num_examples is None:
            raise RuntimeError("EmbeddingCache.bind(num_examples) was never called")
        seen = self.seen_epoch.get(element)
        if seen is None:
            return None, np.zeros(self.num_examples, dtype=bool)
        return self.embeddings.get(element), seen >= 0

    def synchronize(self) -> None:
        """Under torch.distributed, merge the ranks' rows (each rank saw different batches).

        Collective (all ranks must call it): an all-reduce of rows and counts; a row seen by
        several ranks gets their mean (re-normalised). No-op without an initialised process group.
        """
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        for e in self._elements():
            store, seen = self.lookup(e)
            dim = torch.tensor([0 if store is None else store.shape[1]], device=device)
            dist.all_reduce(dim, op=dist.ReduceOp.MAX)
            d = int(dim.item())
            if d == 0:
                continue
            local = store if store is not None else np.zeros((self.num_examples, d), dtype=np.float32)
            rows = torch.from_numpy(np.where(seen[:, None], local, 0.0).astype(np.float32))
            count = torch.from_numpy(seen.astype(np.float32))
            last = torch.from_numpy(self.seen_epoch[e].copy())
            if device is not None:
                rows, count, last = rows.to(device), count.to(device), last.to(device)
            dist.all_reduce(rows)
            dist.all_reduce(count)
            dist.all_reduce(last, op=dist.ReduceOp.MAX)
            merged = rows.cpu().numpy()  # (n, d)
            have = count.cpu().numpy() > 0
            merged[have] = _normalise(merged[have])
            self.embeddings[e] = merged
            self.seen_epoch[e] = np.where(have, last.cpu().numpy(), -1)
