"""Raw-record preprocessors: one object for training and serving, saved as JSON, never pickled."""

import json

import pytest
import torch

from guardrail.errors import DataError
from guardrail.preprocess import (
    TabularPreprocessor,
    TensorPreprocessor,
    load_preprocessor,
    save_preprocessor,
)

RECORDS = [{"amount": 1000.0, "state": "CA"}, {"amount": 3000.0, "state": "NY"},
           {"amount": 2000.0, "state": "CA"}]


def test_a_saved_tabular_preprocessor_transforms_records_as_the_fitted_one(tmp_path):
    pre = TabularPreprocessor.fit(RECORDS, ["amount"], ["state"], log_features=["amount"])
    save_preprocessor(pre, tmp_path / "preprocessor.json")
    again = load_preprocessor(tmp_path / "preprocessor.json")
    for a, b in zip(pre.transform(RECORDS), again.transform(RECORDS), strict=True):
        assert torch.equal(a, b)
    assert again.transform([{"amount": 10.0, "state": "TX"}])[1].tolist() == [[0]]  # unseen


def test_records_and_frames_give_the_same_tensors():
    import pandas as pd

    frame = pd.DataFrame(RECORDS)
    a = TabularPreprocessor.fit(frame, ["amount"], ["state"])
    b = TabularPreprocessor.fit(RECORDS, ["amount"], ["state"])
    assert a.state_dict() == b.state_dict()


def test_a_tensor_preprocessor_round_trips_records():
    inputs = (torch.randn(3, 2, 2), torch.randint(0, 9, (3, 4)))
    pre = TensorPreprocessor.fit(inputs)
    back = pre.transform(pre.records(inputs))
    assert torch.equal(back[0], inputs[0]) and torch.equal(back[1], inputs[1])


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot be read"),
    (json.dumps({"format": 1, "class": "no_such_module:Thing", "state": {}}),
     "cannot be imported"),
    (json.dumps({"format": 1, "class": "os:system", "state": {}}), "refusing to load"),
])
def test_a_bad_preprocessor_file_is_refused_in_one_paragraph(tmp_path, content, message):
    path = tmp_path / "preprocessor.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_preprocessor(path)
