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
