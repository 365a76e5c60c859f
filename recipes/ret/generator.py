"""A seeded synthetic app-event log for the RET recipe: two weeks of sessions per user.

Each user has latent engagement (Gamma), sociality and skill (Beta), and a daily retention
hazard partly set by the quasi-identifiers gender, age band and city, which the paper's team
could not see because of privacy rules. Sessions per day are Poisson with a rate that decays
with days since install and follows a day-of-week cycle; the events inside a session come from
a user-specific Markov chain. Whether a user is back on days 7-13 is therefore driven by the
week-1 intensity, by who they are, and by noise.

Example:
    >>> users, events = synthetic_app_events(n_users=200, seed=1)
    >>> list(users.columns)
    ['user_id', 'install_weekday', 'gender', 'age_band', 'city']
    >>> list(events.columns), sorted(events["event"].cat.categories) == sorted(EVENT_TYPES)
    (['user_id', 'day', 'session', 'event'], True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EVENT_TYPES = ("open", "level_start", "level_complete", "purchase", "social")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
GENDERS = ("female", "male", "other")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
CITIES = ("Stockholm", "Gothenburg", "Malmo", "Uppsala", "Vasteras", "Orebro", "Linkoping",
          "Umea")
QUASI_IDENTIFIERS = ("gender", "age_band", "city")
N_DAYS = 14  # days 0-6 are observed, days 7-13 define the label

# Log-hazard offsets of the daily decay: who churns fast (young users, two cities with a
# competitor's launch campaign) is knowable from the quasi-identifiers, not from week 1 alone.
_GENDER_EFFECT = np.array([-0.1, 0.1, 0.0])
_AGE_EFFECT = np.array([0.75, 0.3, -0.15, -0.5, -0.8])
_CITY_EFFECT = np.array([0.0, -0.2, 0.2, -0.4, 0.8, -0.6, 0.4, 1.0])
_WEEKDAY_FACTOR = np.array([0.9, 0.85, 0.9, 0.95, 1.05, 1.25, 1.1])  # Mon..Sun sessions
# Base transitions from [open, level_start, level_complete, purchase, social] (rows) to
# [level_start, level_complete, purchase, social, end] (columns); a session starts at "open".
_BASE = np.array([
    [0.60, 0.00, 0.05, 0.15, 0.20],
    [0.05, 0.60, 0.02, 0.03, 0.30],
    [0.50, 0.00, 0.08, 0.12, 0.30],
    [0.50, 0.00, 0.05, 0.10, 0.35],
    [0.40, 0.00, 0.02, 0.30, 0.28],
])
_MAX_STEPS = 40  # events per session at most (the chain ends far earlier in practice)


def _transitions(rng: np.random.Generator, sociality: np.ndarray, skill: np.ndarray,
                 spend: np.ndarray) -> np.ndarray:
    """User-specific transition matrices ``[U, 5, 5]``: the base tilted by each user's traits."""
    n = len(sociality)
    tilt = np.ones((n, 5, 5))
    tilt[:, :, 3] *= (0.25 + 3.0 * sociality)[:, None]  # -> social
    tilt[:, 1, 1] *= 0.4 + 1.5 * skill  # level_start -> level_complete
    tilt[:, :, 2] *= spend[:, None]  # -> purchase
    tilt *= rng.lognormal(0.0, 0.2, size=tilt.shape)  # idiosyncratic habits
    probs = _BASE[None] * tilt
    return probs / probs.sum(-1, keepdims=True)


def _session_events(rng: np.random.Generator, trans: np.ndarray,
                    session_user: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walk every session's chain at once; returns ``(session index, event code)`` per event."""
    n = len(session_user)
    sessions, codes = [np.arange(n)], [np.zeros(n, dtype=np.int64)]  # every session opens
    alive, state = np.arange(n), np.zeros(n, dtype=np.int64)
    for _ in range(_MAX_STEPS - 1):
        cum = trans[session_user[alive], state].cumsum(-1)  # [n_alive, 5]
        nxt = (rng.random(len(alive))[:, None] > cum).sum(-1)  # 0..4 over the columns
        nxt = np.minimum(nxt, 4)  # float round-off at the top of the cumsum
        keep = nxt < 4  # column 4 is "end"
        alive, state = alive[keep], nxt[keep] + 1  # columns 0..3 are event codes 1..4
        if not len(alive):
            break
        sessions.append(alive)
        codes.append(state)
    session, code = np.concatenate(sessions), np.concatenate(codes)
    order = np.argsort(session, kind="stable")  # events of a session together, in order
    return session[order], code[order]


def synthetic_app_events(
    n_users: int = 20_000, seed: int = 0, base_sessions: float = 1.2, decay: float = 0.35,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two weeks (days 0-13 since install) of app events for ``n_users`` users, seeded.

    Args:
        n_users: Number of users.
        seed: Seed of ``numpy.random.default_rng``; the same seed gives the same bytes.
        base_sessions: Mean sessions on install day for a user of average engagement.
        decay: Median daily log-decay of the session rate (before user effects).

    Returns:
        ``(users, events)``. ``users``: ``user_id`` (str), ``install_weekday``, ``gender``,
        ``age_band``, ``city`` (categoricals). ``events``, one row per event in time order per
        user: ``user_id``, ``day`` (0-13 since install), ``session`` (a global session number),
        ``event`` (categorical over :data:`EVENT_TYPES`; each session starts with ``open``).

    Example:
        >>> users, events = synthetic_app_events(n_users=500, seed=3)
        >>> first = events.groupby("session")["event"].first()
        >>> bool((first == "open").all()), len(users)
        (True, 500)
    """
    rng = np.random.default_rng(seed)
    gender = rng.choice(len(GENDERS), n_users, p=[0.48, 0.48, 0.04])
    age = rng.choice(len(AGE_BANDS), n_users, p=[0.25, 0.30, 0.20, 0.15, 0.10])
    city_p = 1.0 / np.arange(1, len(CITIES) + 1)  # Zipf: the capital is the largest
    city = rng.choice(len(CITIES), n_users, p=city_p / city_p.sum())
    weekday = rng.integers(0, 7, n_users)
    engagement = rng.gamma(2.0, 0.5, n_users)  # mean 1, heterogeneous
    sociality, skill = rng.beta(2.0, 5.0, n_users), rng.beta(3.0, 3.0, n_users)
    spend = rng.gamma(1.0, 1.0, n_users)
    # Daily log-decay of the session rate [U]: demographics, habits and noise.
    log_hazard = (np.log(decay) + _GENDER_EFFECT[gender] + _AGE_EFFECT[age] + _CITY_EFFECT[city]
                  - 2.0 * (sociality - 2 / 7) - 1.0 * (skill - 0.5)
                  + rng.normal(0.0, 0.35, n_users))
    days = np.arange(N_DAYS)
    rate = (base_sessions * engagement[:, None] * np.exp(-np.exp(log_hazard)[:, None] * days)
            * _WEEKDAY_FACTOR[(weekday[:, None] + days) % 7])  # [U, 14]
    n_sessions = rng.poisson(rate)  # [U, 14]
    n_sessions[:, 0] = np.maximum(n_sessions[:, 0], 1)  # installing is a session
    session_user = np.repeat(np.arange(n_users), n_sessions.sum(1))
    session_day = np.repeat(np.tile(days, n_users), n_sessions.ravel())
    session, code = _session_events(
        rng, _transitions(rng, sociality, skill, spend), session_user)
    ids = np.array([f"u{i:06d}" for i in range(n_users)])

    def categorical(codes: np.ndarray, levels: tuple[str, ...]) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=list(levels))

    users = pd.DataFrame({
        "user_id": ids, "install_weekday": categorical(weekday, WEEKDAYS),
        "gender": categorical(gender, GENDERS), "age_band": categorical(age, AGE_BANDS),
        "city": categorical(city, CITIES),
    })
    events = pd.DataFrame({
        "user_id": ids[session_user[session]], "day": session_day[session].astype(np.int64),
        "session": session.astype(np.int64), "event": categorical(code, EVENT_TYPES),
    })
    return users, events


# What users write to support; a few leave contact details in the text.
_NOTES = ("Can't get past level {n}", "Game crashes when I open the shop",
          "Please add more levels", "Love it!", "Purchase did not arrive",
          "How do I invite friends?", "Too many ads", "Lost my progress after the update",
          "Great game, but the battery drains fast", "Is there a dark mode?")
_NAMES = ("anna", "erik", "maja", "lars", "sara", "johan", "elin", "oskar")
_CONTACTS = ("Write to me at {name}.{m}@example.se", "Mail {name}{m}@mail.example.com please",
             "Call me on +46 70 {a} {b} {c}", "My number is 07{d}-{a} {b} {c}")


def support_notes(n_users: int, seed: int = 0, contact_share: float = 0.05) -> list[str]:
    """A free-text support note per user, seeded; ``contact_share`` of them hold contact details.

    What an app's support form sends along: the text a user typed. Some users leave their
    e-mail address or phone number in it, so the field holds personal data although nobody
    designed it to.

    Example:
        >>> notes = support_notes(400, seed=1)
        >>> sum("@" in n or "+46" in n or "My number" in n for n in notes)
        21
    """
    rng = np.random.default_rng([seed, 7])
    notes = [_NOTES[i].format(n=int(rng.integers(2, 40)))
             for i in rng.integers(0, len(_NOTES), n_users)]
    for u in np.flatnonzero(rng.random(n_users) < contact_share):
        contact = _CONTACTS[rng.integers(0, len(_CONTACTS))].format(
            name=_NAMES[rng.integers(0, len(_NAMES))], m=int(rng.integers(1, 99)),
            a=int(rng.integers(100, 999)), b=int(rng.integers(10, 99)),
            c=int(rng.integers(10, 99)), d=int(rng.integers(0, 9)))
        notes[u] += f"{'' if notes[u][-1] in '!?' else '.'} {contact}"
    return notes
