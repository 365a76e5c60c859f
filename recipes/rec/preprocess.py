"""REC records: a user id plus a movie's fields, to the recommender's ``(users, items)`` rows.

A record is what a client asks the recommender to score: ``{"userId": 15, "movieId": 31,
"title": "Dangerous Minds", "year": 1995, "genres": ["Drama"]}`` (a missing title or year
is ``null``). The preprocessor maps the user id to its embedding row and the movie id to its row
of the catalogue the model was trained with; the model then scores the pair (a BPR score:
higher ranks first). Its state is the two id lists in row order (671 users and 9,066 movies of
MovieLens) and the catalogue's titles, which the data contract counts as known.

The movie's ``title``, ``year`` and ``genres`` are in the record because a client has them and
the data contract checks them (a movie outside the catalogue shows as an unseen id and
title); the model reads a movie's content from its catalogue, by ``movieId``, so a movie outside the
catalogue cannot be scored and is refused with the reason.

Example:
    >>> pre = RecPreprocessor(users=[1, 2, 7], movies=[31, 1029, 1061])
    >>> records = [{"userId": 7, "movieId": 1029}, {"userId": 1, "movieId": 31}]
    >>> [t.tolist() for t in pre.transform(records)]
    [[2, 0], [1, 0]]
    >>> pre.transform([{"userId": 3, "movieId": 31}])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    guardrail.errors.DataError: REC record 0 has the userId 3, which the model has no row for: ...

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from guardrail.errors import DataError
from guardrail.preprocess import Preprocessor, Record
from guardrail.privacy.pseudonym import PREFIX

MOVIE_FIELDS = ("title", "year", "genres")

__all__ = ["MOVIE_FIELDS", "RecPreprocessor"]


class RecPreprocessor(Preprocessor):
    """(user id, movie id) records to ``(users [B], items [B])`` embedding and catalogue rows.

    Args:
        users: The user ids, in embedding-row order (every user of the training data).
        movies: The movie ids, in catalogue-row order (training movies first, then the new
            ones, as :class:`~guardrail.recipes.rec.data.MovieLensDataModule` orders them).

    """

    kinds = {"userId": "id", "movieId": "id", "title": "categorical", "year": "numeric",
             "genres": "sequence",
             "genres[]": "categorical"}

    def __init__(self, users: Sequence[int | str], movies: Sequence[int],
                 titles: Sequence[str | None] | None = None) -> None:
        # whole numbers, or keyed pseudonyms (``ps_...``) where the datamodule pseudonymised
        self.users = [u if isinstance(u, str) and u.startswith(PREFIX) else int(u)
                      for u in users]
        self.movies = [int(m) for m in movies]
        self.titles = None if titles is None else [None if t is None else str(t)
                                                   for t in titles]
        self._user_row: dict[Any, int] = {u: i for i, u in enumerate(self.users)}
        self._movie_row = {m: i for i, m in enumerate(self.movies)}

    def transform(self, records: Sequence[Record]) -> tuple[torch.Tensor, ...]:
        """``(users [B] int64, items [B] int64)``: the rows the model scores."""
        users = [self._row(r, i, "userId", self._user_row) for i, r in enumerate(records)]
        items = [self._row(r, i, "movieId", self._movie_row) for i, r in enumerate(records)]
        return (torch.tensor(users, dtype=torch.int64), torch.tensor(items, dtype=torch.int64))

    def vocabularies(self) -> dict[str, list[Any]]:
        """The catalogue's movies (and titles): movies no one rated in training are known.

        The model scores a movie of its catalogue from its content, rated in training or not;
        the data contract then warns only about movies outside the catalogue.
        """
        known: dict[str, list[Any]] = {"movieId": list(self.movies)}
        if self.titles is not None:
            known["title"] = [t for t in self.titles if t is not None]
        return known

    def state_dict(self) -> dict[str, Any]:
        """User and movie ids in row order, and the movies' titles."""
        return {"users": self.users, "movies": self.movies, "titles": self.titles}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> RecPreprocessor:
        """The preprocessor :meth:`state_dict` describes."""
        return cls(state["users"], state["movies"], state.get("titles"))

    @staticmethod
    def _row(record: Record, i: int, key: str, rows: dict[Any, int]) -> int:
        try:
            value = record[key]
            if isinstance(value, str) and value.startswith(PREFIX):
                row = rows.get(value)
            else:
                row = rows.get(int(value)) if float(value) == int(value) else None
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DataError(
                f"REC record {i} has no whole-number '{key}' (got "
                f"{record.get(key) if isinstance(record, Mapping) else record!r}); send "
                '{"userId": 15, "movieId": 31, ...}.') from None
        if row is None:
            what = ("user", "users seen in training") if key == "userId" else (
                "movie", "movies of the catalogue it was trained with")
            raise DataError(
                f"REC record {i} has the {key} {value}, which the model has no row for: it "
                f"knows {len(rows):,} {what[1]}. A new {what[0]} needs the model trained "
                "again with it; send an id the model knows.")
        return row
