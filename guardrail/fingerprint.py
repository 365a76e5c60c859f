"""Content hashes of tensors, batches, datasets and model weights.

Two kinds of data fingerprint answer two different questions:

* **content** (:func:`dataset_fingerprint`): *which* samples a split holds — independent of
  their order, sensitive to every byte and to duplicates;
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
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

DIGEST_SIZE = 16
_MASK = (1 << 64) - 1


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
    """One 64-bit hash per row of ``tensor`` (vectorised; rows hashed as raw bytes)."""
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


def dataset_fingerprint(dataset: Dataset | Iterable[Any]) -> dict[str, Any]:
    """Order-independent content fingerprint of a split: hash, sample count, schema, speed.

    ``TensorDataset`` is hashed row-wise in bulk; any other map-style dataset sample by sample
    (a multiset of per-sample digests: order does not matter, duplicates do). Iterable
    datasets without a length are not read (``content`` is ``None``).
    """
    start = time.perf_counter()
    if isinstance(dataset, TensorDataset):
        with np.errstate(over="ignore"):
            total = _sample_rows(dataset.tensors).sum(dtype=np.uint64)
        content = tensor_hash(np.array([total], dtype=np.uint64))
        n, nbytes = len(dataset), sum(t.numel() * t.element_size() for t in dataset.tensors)
        first: Any = dataset[0] if n else None
    elif isinstance(dataset, Sized) and hasattr(dataset, "__getitem__"):
        n = len(dataset)
        acc, nbytes, first = 0, 0, None
        for i in range(n):
            sample = dataset[i]
            first = sample if first is None else first
            h = new_hasher()
            update_hash(h, sample)
            acc = (acc + int.from_bytes(h.digest()[:8], "little")) & _MASK
            nbytes += _nbytes(sample)
        content = tensor_hash(np.array([acc], dtype=np.uint64))
    else:
        return {"content": None, "samples": None, "schema": None,
                "skipped": f"{type(dataset).__name__} has no length; not read"}
    seconds = time.perf_counter() - start
    return {"content": content, "samples": n, "schema": _schema(first), "bytes": nbytes,
            "seconds": round(seconds, 4)}


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


def sample_hashes(dataset: Any, max_samples: int = 200_000) -> np.ndarray | None:
    """One 64-bit hash per sample's *inputs* (the last field, the target, left out).

    ``TensorDataset`` is hashed in bulk; other map-style datasets sample by sample, up to
    ``max_samples``. None for datasets without a length.

    Example:
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])
        >>> h = sample_hashes(TensorDataset(x, torch.tensor([0, 1, 1])))
        >>> bool(h[0] == h[2]), bool(h[0] == h[1])
        (True, False)
    """
    if isinstance(dataset, TensorDataset):
        return _sample_rows(_inputs_of(dataset.tensors))
    if not (isinstance(dataset, Sized) and hasattr(dataset, "__getitem__")):
        return None
    out = []
    for i in range(min(len(dataset), max_samples)):
        h = new_hasher()
        update_hash(h, _inputs_of(dataset[i]))
        out.append(int.from_bytes(h.digest()[:8], "little"))
    return np.array(out, dtype=np.uint64)


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

