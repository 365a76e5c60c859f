"""Item content of the REC recipe (genres, year, title words), encoded from training items.

New (cold) movies have no ratings, so content is all the model knows of them; every
vocabulary and scaling is fitted on the known (training) movies only, so nothing about a new
movie leaks into what the model was trained on.

Example:
    >>> import pandas as pd
    >>> movies = pd.DataFrame({"title": ["Alien", "Aliens", "Up"], "year": [1979, 1986, 2009],
    ...                        "genres": ["Horror|Sci-Fi", "Sci-Fi", "Comedy"]})
    >>> c = item_content(movies, n_known=2, min_token_count=1, max_title_tokens=2)
    >>> c.genre_names, c.genres[2].tolist(), c.title_tokens[:, 0].tolist()
    (['Horror', 'Sci-Fi'], [0.0, 0.0], [1, 2, 0])
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

NO_GENRES = "(no genres listed)"


def tokenize(title: Any) -> list[str]:
    """Lower-case alphanumeric words of a title (missing title: none).

    Example:
        >>> tokenize("Star Wars: Episode IV - A New Hope"), tokenize(None)
        (['star', 'wars', 'episode', 'iv', 'a', 'new', 'hope'], [])
    """
    return re.findall(r"[a-z0-9]+", title.lower()) if isinstance(title, str) else []


@dataclasses.dataclass
class ItemContent:
    """Content features of every item, in the datamodule's item order.

    Attributes:
        genre_names: The ``G`` genres of training items.
        genres: ``[N, G]`` float32 0/1.
        year: ``[N, 2]`` float32: scaled year (0 if missing), missing flag.
        title_vocab: Title word -> token id (1..; 0 is padding).
        title_tokens: ``[N, max_title_tokens]`` int64 token ids, 0-padded.
    """

    genre_names: list[str]
    genres: np.ndarray
    year: np.ndarray
    title_vocab: dict[str, int]
    title_tokens: np.ndarray


def item_content(movies: pd.DataFrame, n_known: int, min_token_count: int,
                 max_title_tokens: int) -> ItemContent:
    """Encode ``movies`` (``title``, ``year``, ``genres``; the first ``n_known`` are known).

    A genre or title word enters a vocabulary only from training items (a word must be in
    ``min_token_count`` of their titles); years are standardised by training items.
    """
    known = movies.iloc[:n_known]
    genre_lists = movies["genres"].str.split("|")
    vocab = sorted({g for gs in genre_lists.iloc[:n_known] for g in gs} - {NO_GENRES})
    genres = np.array([[g in gs for g in vocab] for gs in genre_lists], dtype=np.float32)
    # clipped to the training range: new movies are later than any training movie, and an
    # MLP extrapolating past its training years scores them erratically (seed-dependent)
    year = np.clip(movies["year"].to_numpy(float), known["year"].min(), known["year"].max())
    mean, std = np.nanmean(known["year"]), np.nanstd(known["year"])
    scaled = np.stack([np.nan_to_num((year - mean) / std), np.isnan(year)], 1).astype(
        np.float32)  # [N, 2]: scaled year (0 if missing), missing flag
    tokens = [tokenize(t) for t in movies["title"]]
    counts = Counter(w for ws in tokens[:n_known] for w in set(ws))
    title_vocab = {w: i + 1 for i, w in enumerate(
        sorted(w for w, n in counts.items() if n >= min_token_count))}
    ids = [[title_vocab[w] for w in ws if w in title_vocab][:max_title_tokens] for ws in tokens]
    title_tokens = np.zeros((len(ids), max_title_tokens), dtype=np.int64)
    for i, row in enumerate(ids):
        title_tokens[i, : len(row)] = row
    return ItemContent(vocab, genres, scaled, title_vocab, title_tokens)
