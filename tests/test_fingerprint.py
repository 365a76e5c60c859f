import torch
from torch.utils.data import Dataset, TensorDataset

from guardrail.fingerprint import OrderFingerprint, dataset_fingerprint, state_hash, tensor_hash


class Dicts(Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {"x": torch.tensor(self.rows[i]), "y": i % 2}


def test_content_ignores_order_but_not_values_pairing_or_duplicates():
    x, y = torch.randn(50, 4), torch.arange(50)
    base = dataset_fingerprint(TensorDataset(x, y))["content"]
    perm = torch.randperm(50)
    assert dataset_fingerprint(TensorDataset(x[perm], y[perm]))["content"] == base
    x2 = x.clone()
    x2[7, 2] += 1e-6
    assert dataset_fingerprint(TensorDataset(x2, y))["content"] != base
    assert dataset_fingerprint(TensorDataset(x, y[perm]))["content"] != base  # re-paired labels
    dup = torch.cat([x[:49], x[:1]]), torch.cat([y[:49], y[:1]])
    assert dataset_fingerprint(TensorDataset(*dup))["content"] != base


def test_generic_datasets_are_fingerprinted_sample_by_sample():
    a = dataset_fingerprint(Dicts([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    b = dataset_fingerprint(Dicts([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]]))
    assert a["samples"] == 3 and a["schema"] == {"x": {"dtype": "torch.float32", "shape": [2]},
                                                 "y": "int"}
    assert a["content"] != b["content"]


def test_order_fingerprint_sees_a_different_order_of_the_same_batches():
    batches = [torch.full((2,), float(i)) for i in range(6)]
    a, b = OrderFingerprint(batches=3), OrderFingerprint(batches=3)
    for i, batch in enumerate(batches):
        a.update(0, i, batch)
    for i, batch in enumerate([batches[1], batches[0], *batches[2:]]):
        b.update(0, i, batch)
    assert a.digest() != b.digest()
    c = OrderFingerprint(batches=3)
    for i, batch in enumerate([*batches[:3], torch.zeros(9), torch.ones(9), torch.ones(1)]):
        c.update(0, i, batch)
    assert c.digest() == a.digest()  # only the first batches count


def test_hashes_see_dtype_shape_and_every_parameter():
    assert tensor_hash(torch.zeros(2, 3)) != tensor_hash(torch.zeros(3, 2))
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert state_hash(a) == state_hash(b)
    with torch.no_grad():
        b.bias[1] = b.bias[1] + 1e-7
    assert state_hash(a) != state_hash(b)
    assert tensor_hash(torch.tensor(1.5)) != tensor_hash(torch.tensor(2.5))  # 0-d tensors


def test_zero_width_tensors_are_hashed():
    ds = TensorDataset(torch.randn(5, 2), torch.zeros(5, 0), torch.arange(5))
    assert dataset_fingerprint(ds)["samples"] == 5


def shards(dataset, world, fn):
    """What ``fn`` returns on rank 0 when ``world`` ranks each hash their shard."""
    from guardrail.fingerprint import _partial

    parts = [(*_partial(dataset, None, r, world), 0.0) for r in range(world)]
    return fn(dataset, rank=0, world=world,  # timings are gathered too: one rank's is theirs
              gather=lambda mine: parts if isinstance(mine, tuple) else [mine] * world)


def test_shards_on_every_rank_combine_to_the_one_process_fingerprint():
    x = torch.randn(101, 3)
    for dataset in (TensorDataset(x, torch.arange(101)),
                    Dicts([row.tolist() for row in x])):
        whole = dataset_fingerprint(dataset)
        for world in (2, 3):
            split = shards(dataset, world, dataset_fingerprint)
            assert split["content"] == whole["content"] and split["ranks"] == world
            assert split["bytes"] == whole["bytes"]


def test_a_large_map_style_split_is_sampled_and_says_so():
    rows = [[float(i), 1.0] for i in range(50)]
    full, sampled = dataset_fingerprint(Dicts(rows)), dataset_fingerprint(Dicts(rows),
                                                                          max_samples=20)
    assert "sampled" not in full
    assert sampled["sampled"] == {"hashed": 20, "why": "count", "seed": 0}
    assert sampled["samples"] == 50
    assert sampled["content"] != full["content"]
    # the same data sampled again gives the same fingerprint; a changed sample a new one
    assert dataset_fingerprint(Dicts(rows), max_samples=20)["content"] == sampled["content"]
    from guardrail.fingerprint import sample_indices

    changed = [list(r) for r in rows]
    changed[int(sample_indices(50, 20)[0])][1] = 2.0
    assert dataset_fingerprint(Dicts(changed), max_samples=20)["content"] != sampled["content"]


def test_leakage_hashes_are_gathered_from_every_rank_in_one_array():
    from guardrail.fingerprint import sample_hashes

    dataset = Dicts([[float(i), 0.0] for i in range(30)])
    whole, n = sample_hashes(dataset)
    mine = [sample_hashes(dataset, rank=r, world=3, gather=lambda h: [h])[0] for r in range(3)]
    assert sum(len(m) for m in mine) == 30
    gathered, _ = sample_hashes(dataset, rank=0, world=3, gather=lambda h: mine)
    assert n == 30 and sorted(gathered.tolist()) == sorted(whole.tolist())
    sampled, n = sample_hashes(dataset, max_samples=10)
    assert len(sampled) == 10 and n == 30


def test_a_split_too_slow_to_hash_whole_is_sampled_to_fit_the_time_budget():
    import time

    class Slow(Dicts):
        def __getitem__(self, i):
            time.sleep(0.001)  # a decoded image's read
            return super().__getitem__(i)

    rows = [[float(i), 1.0] for i in range(3000)]
    fast = dataset_fingerprint(Slow(rows), max_seconds=None)
    slow = dataset_fingerprint(Slow(rows), max_seconds=0.5)
    assert "sampled" not in fast
    assert slow["sampled"]["why"] == "time" and slow["sampled"]["hashed"] <= 512
    assert slow["seconds"] < fast["seconds"] / 2
