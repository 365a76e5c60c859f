"""Content hashes of tensors, batches, datasets and model weights.

Two kinds of data fingerprint answer two different questions:

* **content** (:func:`dataset_fingerprint`): *which* samples a split holds — independent of
  their order, sensitive to every byte and to duplicates. Its cost grows with the data, so it
  is bounded: in-memory tensors are hashed in bulk, a chunk of rows at a time; a map-style
  dataset whose samples would take more than ``max_seconds`` to read and hash (timed on its
  first 64), or that holds more than ``max_samples``, is hashed on a seeded sample (its size
  a power of two, recorded under ``sampled``, so two fingerprints are compared only as like
  with like); and under DDP every rank hashes a shard and the per-sample hashes' sum is
  combined;
* **order** (:class:`OrderFingerprint`): *in which order* training saw them — a running hash
  of the first batches of each epoch, so a flipped shuffle flag is visible as such.

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> a = TensorDataset(torch.arange(6.).view(3, 2), torch.tensor([0, 1, 0]))
    >>> b = TensorDataset(torch.arange(6.).view(3, 2)[[2, 0, 1]], torch.tensor([0, 0, 1]))
    >>> dataset_fingerprint(a)["content"] == dataset_fingerprint(b)["content"]
    True
    >>> tensor_hash(torch.ones(2)) == tensor_hash(torch.ones(2, dtype=torch.float64))
    False

"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

DIGEST_SIZE = 16
_MASK = (1 << 64) - 1
CHUNK_ROWS = 1 << 16  # rows hashed at once: bounded memory on a 10-million-row table
MAX_SAMPLES = 1_000_000  # map-style samples hashed one by one before a seeded sample is taken
MAX_SECONDS = 6.0  # seconds a map-style split's hashing may hold a run up, all ranks together
SAMPLE_SEED = 0
PROBE_SAMPLES = 64  # samples timed to estimate the per-sample cost


def new_hasher() -> Any:
    """A fresh blake2b hasher of the digest size every guardrail hash uses."""
    return hashlib.blake2b(digest_size=DIGEST_SIZE)


def _tensor_bytes(t: Tensor) -> memoryview:
    t = t.detach().cpu().contiguous().reshape(-1)  # 1-D: 0-d tensors cannot be viewed as bytes
    return memoryview(t.view(torch.uint8).numpy()) if t.numel() else memoryview(b"")


def update_hash(h: Any, obj: Any) -> None:
    """Feed ``obj`` (tensors, arrays, numbers, strings, nested tuples/lists/dicts) to ``h``."""
    if isinstance(obj, Tensor):
        h.update(f"T{obj.dtype}{tuple(obj.shape)}".encode())
        h.update(_tensor_bytes(obj))
    elif isinstance(obj, np.ndarray):
        h.update(f"A{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for key in sorted(obj, key=str):
            h.update(str(key).encode())
            update_hash(h, obj[key])
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for item in obj:
            update_hash(h, item)
        h.update(b"]")
    else:
        h.update(f"{type(obj).__name__}:{obj!r}".encode())


def tensor_hash(obj: Any) -> str:
    """Hex digest of a tensor (or any nested structure of them), dtype and shape included."""
    h = new_hasher()
    update_hash(h, obj)
    return h.hexdigest()


def state_hash(module_or_state: nn.Module | Mapping[str, Tensor]) -> str:
    """Hex digest of a model's parameters and buffers, by name.

    Example:
        >>> m = nn.Linear(2, 1)
        >>> before = state_hash(m)
        >>> with torch.no_grad():
        ...     _ = m.weight.add_(1e-7)
        >>> state_hash(m) != before
        True

    """
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) \
        else module_or_state
    h = new_hasher()
    for name in sorted(state):
        h.update(name.encode())
        update_hash(h, state[name])
    return h.hexdigest()


def file_hash(path: str, chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes, streamed."""
    h = new_hasher()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _schema(sample: Any) -> Any:
    if isinstance(sample, Tensor):
        return {"dtype": str(sample.dtype), "shape": list(sample.shape)}
    if isinstance(sample, Mapping):
        return {str(k): _schema(v) for k, v in sample.items()}
    if isinstance(sample, list | tuple):
        return [_schema(v) for v in sample]
    return type(sample).__name__


def _row_hashes(tensor: Tensor) -> np.ndarray:
    """One 64-bit hash per row of ``tensor`` (vectorised, ``CHUNK_ROWS`` rows at a time)."""
    if len(tensor) <= CHUNK_ROWS:
        return _chunk_hashes(tensor)
    return np.concatenate([_chunk_hashes(tensor[i:i + CHUNK_ROWS])
                           for i in range(0, len(tensor), CHUNK_ROWS)])


def _chunk_hashes(tensor: Tensor) -> np.ndarray:
    """One 64-bit hash per row of ``tensor``, its rows hashed as raw bytes."""
    raw = tensor.detach().cpu().contiguous().reshape(len(tensor), -1)
    if raw.shape[1] == 0:  # e.g. no categorical columns: [N, 0]
        return np.zeros(len(tensor), dtype=np.uint64)
    words = raw.view(torch.uint8).numpy().reshape(len(tensor), -1)
    pad = (-words.shape[1]) % 8
    if pad:
        words = np.pad(words, ((0, 0), (0, pad)))
    words = np.ascontiguousarray(words).view(np.uint64)  # [N, W]
    rng = np.random.default_rng(0x9E3779B9)
    mult = rng.integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        return _mix((words * mult).sum(axis=1, dtype=np.uint64))


def _sample_rows(tensors: Sequence[Tensor]) -> np.ndarray:
    """One hash per sample over several aligned tensors (their rows paired, then mixed)."""
    rows = np.zeros(len(tensors[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, t in enumerate(tensors):
            rows = _mix((rows + _row_hashes(t)) * np.uint64(2 * i + 0x9E3779B97F4A7C15))
    return rows


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise: sums of mixed hashes do not cancel structure."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def sample_indices(n: int, max_samples: int = MAX_SAMPLES,
                   seed: int = SAMPLE_SEED) -> np.ndarray | None:
    """The samples hashed out of ``n``: None for all, else a seeded sorted sample of them.

    The same ``n``, ``max_samples`` and seed give the same sample on every machine and rank.

    Example:
        >>> sample_indices(10, 20) is None
        True
        >>> sample_indices(10, 4).tolist()
        [2, 4, 5, 7]

    """
    if n <= max_samples:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False))


def _affordable(dataset: Any, n: int, max_samples: int, max_seconds: float | None,
                world: int, gather: Callable[[Any], list[Any]] | None,
                fn: Callable[[Any], Any]) -> tuple[np.ndarray | None, str]:
    """The samples to hash (None: all) and why a sample: ``"count"`` or ``"time"``.

    The time per sample is measured on the first few (reading and hashing them with ``fn``);
    every rank hashes a ``world``-th of the samples, and the ranks agree on the slowest
    rank's estimate. A sample is rounded down to a power of two, so that the same data on
    similar machines is sampled alike.
    """
    k, why = min(n, max_samples), "count"
    if max_seconds is not None and n > PROBE_SAMPLES:
        start = time.perf_counter()
        for i in range(PROBE_SAMPLES):
            fn(dataset[i])
        per = (time.perf_counter() - start) / PROBE_SAMPLES
        if gather is not None and world > 1:
            per = max(gather(per))
        affordable = int(max_seconds * world / max(per, 1e-9))
        if affordable < k:
            k, why = affordable, "time"
    if why == "time":
        k = max(PROBE_SAMPLES, 1 << max(k, 1).bit_length() - 1)  # a power of two
    if k >= n:
        return None, ""
    return sample_indices(n, k), why


def _shard(n: int, indices: np.ndarray | None, rank: int, world: int) -> np.ndarray:
    """The share of the samples ``rank`` hashes (every ``world``-th, from ``rank``)."""
    chosen = np.arange(n) if indices is None else indices
    return chosen[rank::world]


def dataset_fingerprint(dataset: Dataset | Iterable[Any], *, max_samples: int = MAX_SAMPLES,
                        max_seconds: float | None = MAX_SECONDS, rank: int = 0, world: int = 1,
                        gather: Callable[[Any], list[Any]] | None = None) -> dict[str, Any]:
    """Order-independent content fingerprint of a split: hash, sample count, schema, speed.

    ``TensorDataset`` is hashed row-wise in bulk; any other map-style dataset sample by sample
    (a multiset of per-sample digests: order does not matter, duplicates do), on a seeded
    sample when it holds more than ``max_samples`` or would take more than ``max_seconds``
    (``sampled`` says how many were hashed, why, and the seed). Iterable datasets without a
    length are not read (``content`` is ``None``).

    Under DDP every rank calls it with its ``rank``, the ``world`` size and a ``gather``
    collective (:func:`guardrail.distributed.gather_objects`): each hashes every
    ``world``-th sample, and the partial sums are added, so the content hash is the same as
    on one process. ``seconds`` is the slowest rank's hashing time.

    Example:
        >>> ds = TensorDataset(torch.arange(12.).view(6, 2))
        >>> other = (*_partial(ds, None, 1, 2), 0.0)  # what rank 1 sends
        >>> two = dataset_fingerprint(ds, rank=0, world=2, gather=lambda mine: [mine, other])
        >>> two["content"] == dataset_fingerprint(ds)["content"], two["ranks"]
        (True, 2)

    """
    start = time.perf_counter()
    if not (isinstance(dataset, TensorDataset) or (
            isinstance(dataset, Sized) and hasattr(dataset, "__getitem__"))):
        return {"content": None, "samples": None, "schema": None,
                "skipped": f"{type(dataset).__name__} has no length; not read"}
    n = len(dataset)  # type: ignore[arg-type]
    indices, why = (None, "") if isinstance(dataset, TensorDataset) else _affordable(
        dataset, n, max_samples, max_seconds, world, gather, _sample_digest)
    acc, nbytes = _partial(dataset, indices, rank, world)
    seconds = time.perf_counter() - start
    if gather is not None and world > 1:
        parts = gather((acc, nbytes, seconds))
        acc = sum(a for a, _, _ in parts) & _MASK
        nbytes = sum(b for _, b, _ in parts)
        seconds = max(t for _, _, t in parts)
    content = tensor_hash(np.array([acc], dtype=np.uint64))
    out = {"content": content, "samples": n, "schema": _schema(dataset[0]) if n else None,
           "bytes": nbytes, "seconds": round(seconds, 4)}
    if indices is not None:
        out["sampled"] = {"hashed": len(indices), "why": why, "seed": SAMPLE_SEED}
    if world > 1 and gather is not None:
        out["ranks"] = world
    return out


def _partial(dataset: Any, indices: np.ndarray | None, rank: int,
             world: int) -> tuple[int, int]:
    """The sum of ``rank``'s per-sample 64-bit hashes (mod 2**64), and the bytes it hashed."""
    if isinstance(dataset, TensorDataset):
        n = len(dataset)
        lo, hi = n * rank // world, n * (rank + 1) // world  # a contiguous slice: bulk hashing
        part = [t[lo:hi] for t in dataset.tensors]
        with np.errstate(over="ignore"):
            total = int(_sample_rows(part).sum(dtype=np.uint64)) if hi > lo else 0
        return total, sum(t.numel() * t.element_size() for t in part)
    acc = nbytes = 0
    for i in _shard(len(dataset), indices, rank, world).tolist():
        sample = dataset[i]
        acc = (acc + _sample_digest(sample)) & _MASK
        nbytes += _nbytes(sample)
    return acc, nbytes


def _sample_digest(sample: Any) -> int:
    """One sample's 64-bit digest (the first 8 bytes of its blake2b hash)."""
    h = new_hasher()
    update_hash(h, sample)
    return int.from_bytes(h.digest()[:8], "little")


def _nbytes(sample: Any) -> int:
    if isinstance(sample, Tensor):
        return sample.numel() * sample.element_size()
    if isinstance(sample, Mapping):
        return sum(_nbytes(v) for v in sample.values())
    if isinstance(sample, list | tuple):
        return sum(_nbytes(v) for v in sample)
    return 8


class OrderFingerprint:
    """Running hash of the first ``batches`` batches of every epoch, in the order seen.

    Example:
        >>> fp = OrderFingerprint(batches=2)
        >>> for epoch in range(2):
        ...     for i, b in enumerate([torch.ones(2), torch.zeros(2), torch.ones(3)]):
        ...         fp.update(epoch, i, b)
        >>> len(fp.per_epoch), len(fp.digest())
        (2, 32)

    """

    def __init__(self, batches: int = 4) -> None:
        self.batches = batches
        self.per_epoch: dict[int, str] = {}
        self._open: dict[int, Any] = {}

    def update(self, epoch: int, batch_idx: int, batch: Any) -> None:
        """Feed one training batch; batches past the first ``batches`` of an epoch are ignored."""
        if batch_idx >= self.batches:
            return
        h = self._open.setdefault(epoch, new_hasher())
        update_hash(h, batch)
        self.per_epoch[epoch] = h.copy().hexdigest()

    def digest(self) -> str:
        """One hash over every epoch's order hash."""
        return tensor_hash([self.per_epoch[e] for e in sorted(self.per_epoch)])


def sample_hashes(dataset: Any, max_samples: int = MAX_SAMPLES, *,
                  max_seconds: float | None = MAX_SECONDS, rank: int = 0, world: int = 1,
                  gather: Callable[[Any], list[Any]] | None = None,
                  ) -> tuple[np.ndarray, int] | None:
    """One 64-bit hash per sample's *inputs* (the last field, the target, left out).

    Returns ``(hashes, n)``: ``n`` the dataset's length, ``hashes`` over all of it, or over a
    seeded sample (:func:`sample_indices`) for a map-style dataset that holds more than
    ``max_samples`` or would take more than ``max_seconds``. ``TensorDataset`` is hashed in
    bulk; other map-style datasets sample by sample, every ``world``-th on each rank when a
    ``gather`` collective is given (then every rank gets every hash). None for datasets
    without a length.

    Example:
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])
        >>> h, n = sample_hashes(TensorDataset(x, torch.tensor([0, 1, 1])))
        >>> bool(h[0] == h[2]), bool(h[0] == h[1]), n
        (True, False, 3)
    """
    if isinstance(dataset, TensorDataset):
        return _sample_rows(_inputs_of(dataset.tensors)), len(dataset)
    if not (isinstance(dataset, Sized) and hasattr(dataset, "__getitem__")):
        return None
    n = len(dataset)
    world = world if gather is not None else 1
    indices, _ = _affordable(dataset, n, max_samples, max_seconds, world, gather,
                             lambda sample: _sample_digest(_inputs_of(sample)))
    mine = _shard(n, indices, rank if world > 1 else 0, world)
    out = [_sample_digest(_inputs_of(dataset[i])) for i in mine.tolist()]
    hashes = np.array(out, dtype=np.uint64)
    if world > 1 and gather is not None:
        hashes = np.concatenate(gather(hashes))
    return hashes, n


def _inputs_of(sample: Any) -> Any:
    """A sample (or a TensorDataset's tensors) without its target.

    The target is the last of several fields, or a mapping's ``target`` entry.
    """
    if isinstance(sample, list | tuple) and len(sample) > 1:
        return sample[:-1]
    if isinstance(sample, Mapping):
        return {k: v for k, v in sample.items() if k != "target"}
    return sample


def sample_rows(dataset: Any, max_rows: int = 2048) -> Tensor | None:
    """The first ``max_rows`` samples' inputs, one float row each.

    The target is left out, as in :func:`sample_hashes`; None where samples are not tensors
    of one size.

    Example:
        >>> x = torch.arange(6.0).reshape(3, 2)
        >>> sample_rows(TensorDataset(x, torch.zeros(3))).shape
        torch.Size([3, 2])
    """
    if isinstance(dataset, TensorDataset):
        return torch.cat([t[:max_rows].reshape(min(len(t), max_rows), -1).float()
                          for t in _inputs_of(dataset.tensors)], 1)
    if not (isinstance(dataset, Sized) and hasattr(dataset, "__getitem__")):
        return None
    rows = []
    for i in range(min(len(dataset), max_rows)):
        sample = _inputs_of(dataset[i])
        parts = [sample] if isinstance(sample, Tensor) else list(sample.values()) \
            if isinstance(sample, Mapping) else list(sample) \
            if isinstance(sample, list | tuple) else []
        if not parts or not all(isinstance(t, Tensor) for t in parts):
            return None
        rows.append(torch.cat([t.reshape(-1).float() for t in parts]))
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    return torch.stack(rows)

