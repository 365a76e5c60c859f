"""Synthetic poker action logs of humans, bots and "humanised" bots (pure numpy, seeded).

No public poker action/timing logs ship in any PyPI package, so the BOT recipe simulates
them (``../shared/reference/datasets.md`` §BOT). Each player has one session of ``n_actions``
decisions; per decision the log holds the street, position, action, bet size (fraction of
pot), a hand-strength proxy, a decision-difficulty proxy, time-to-act, the click offset from
the button centre, the mouse path, the table and a timestamp.

What tells the kinds apart, by design:

* **Humans** take longer on hard decisions (log time rises with difficulty), slow down and
  click less precisely as the session wears on (fatigue), take breaks, play at plausible
  hours on 1-4 tables, scatter clicks around a personal bias (sd 8-15 px), move the mouse
  along curved paths, mix preset and typed bet sizes and change style with mood and tilt.
* **Bots** answer in a near-constant or uniformly jittered time unrelated to difficulty,
  click pixel-precisely or uniformly inside the button along straight paths, play a
  stationary solver strategy with three bet sizes, round the clock, on 4-12 tables.
* **Humanised bots** copy the human timing *distribution* (log-normal, heavy tail), click
  noise and curved paths, but their timing still ignores difficulty and they never tire or
  tilt: a rule on timing variance misses them, the difficulty-timing link does not.

Example:
    >>> logs = generate_logs(n_players=50, n_actions=16, bot_rate=0.1, seed=1)
    >>> logs.time_to_act_ms.shape, int(logs.label.sum())
    ((50, 16), 5)
    >>> logs.digest() == generate_logs(n_players=50, n_actions=16, bot_rate=0.1, seed=1).digest()
    True

"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

STREETS = ("preflop", "flop", "turn", "river")
POSITIONS = ("SB", "BB", "UTG", "MP", "CO", "BTN")
ACTIONS = ("fold", "check", "call", "bet", "raise", "all-in")
FOLD, CHECK, CALL, BET, RAISE, ALL_IN = range(len(ACTIONS))
KINDS = ("human", "bot", "humanised_bot")
HUMAN, BOT, HUMANISED = range(len(KINDS))

TIME_LIMIT_MS = 30_000  # the client folds (or checks) for a player who has not acted by then
BUTTON_HALF_PX = (60.0, 20.0)  # half width and height of an action button: clicks land inside
PRESET_SIZES = np.array([0.33, 0.5, 0.75, 1.0])  # the client's bet-size buttons (pot fraction)
SOLVER_SIZES = np.array([0.33, 0.75, 1.0])  # the bots' abstraction: three sizes only
EPOCH_MS = 1_700_000_000_000  # 2023-11-14, where the simulated month of sessions starts


@dataclasses.dataclass(frozen=True)
class PokerLogs:
    """Per-action arrays ``[n_players, n_actions]`` and per-player arrays ``[n_players]``.

    Attributes:
        street: Index into :data:`STREETS`.
        position: Index into :data:`POSITIONS`.
        action: Index into :data:`ACTIONS`.
        bet_frac: Chips put in as a fraction of the pot (0 for fold/check).
        strength: Hand-strength proxy in [0, 1] (equity against a range).
        difficulty: Decision-difficulty proxy in [0, 1]: marginal hand, later street, big pot.
        time_to_act_ms: Milliseconds from the player's turn to the click (time-outs at the limit).
        click_dx: Click x offset from the button centre (px).
        click_dy: Click y offset from the button centre (px).
        path_px: Length of the mouse path to the click (px).
        straight_px: Straight-line distance from the cursor's start to the click (px).
        table_id: Table the action was taken at (a multi-tabler alternates between several).
        timestamp_ms: Unix time of the click (ms).
        player_id: Distinct id per player.
        kind: Index into :data:`KINDS`.
        label: 1 for a bot of either kind, 0 for a human.

    """

    street: np.ndarray
    position: np.ndarray
    action: np.ndarray
    bet_frac: np.ndarray
    strength: np.ndarray
    difficulty: np.ndarray
    time_to_act_ms: np.ndarray
    click_dx: np.ndarray
    click_dy: np.ndarray
    path_px: np.ndarray
    straight_px: np.ndarray
    table_id: np.ndarray
    timestamp_ms: np.ndarray
    player_id: np.ndarray
    kind: np.ndarray
    label: np.ndarray

    def digest(self) -> str:
        """SHA-256 of every array's bytes, in field order: equal digests = identical logs."""
        sha = hashlib.sha256()
        for field in dataclasses.fields(self):
            sha.update(np.ascontiguousarray(getattr(self, field.name)).tobytes())
        return sha.hexdigest()

    def subset(self, players: np.ndarray) -> PokerLogs:
        """Return the logs of the players at row indices ``players``."""
        return PokerLogs(**{f.name: getattr(self, f.name)[players]
                            for f in dataclasses.fields(self)})


def generate_logs(
    n_players: int = 4000, n_actions: int = 64, bot_rate: float = 0.03,
    humanised_share: float = 0.5, seed: int = 0,
) -> PokerLogs:
    """Simulate one session of ``n_actions`` decisions for each of ``n_players`` players.

    Exactly ``round(bot_rate * n_players)`` players are bots (at least one), of which
    ``round(humanised_share * n_bots)`` are humanised; who is which is drawn from ``seed``.

    Example:
        >>> logs = generate_logs(n_players=20, n_actions=8, seed=3)
        >>> sorted(set(ACTIONS[a] for a in logs.action.ravel())) <= sorted(ACTIONS)
        True

    """
    rng = np.random.default_rng(seed)
    p, t = n_players, n_actions
    n_bots = max(1, round(bot_rate * p))
    kind = np.full(p, HUMAN, dtype=np.int64)
    kind[:n_bots] = BOT
    kind[: round(humanised_share * n_bots)] = HUMANISED
    kind = rng.permutation(kind)
    is_h, is_b = (kind == HUMAN)[:, None], (kind == BOT)[:, None]  # [P, 1], broadcast over actions
    progress = np.linspace(0.0, 1.0, t)[None, :]  # [1, T]: 0 at the session's start, 1 at its end

    # The table situation, identical in law for every kind.
    street = rng.choice(4, size=(p, t), p=[0.45, 0.25, 0.17, 0.13])
    position = rng.integers(0, len(POSITIONS), (p, t))
    strength = rng.random((p, t))
    facing = rng.random((p, t)) < 0.5  # facing a bet: fold/call/raise, else check/bet
    pot_bb = np.exp(rng.normal(np.array([1.0, 2.0, 2.6, 3.1])[street], 0.6))
    marginal = 1.0 - np.abs(2.0 * strength - 1.0)  # 1 for a coin-flip hand, 0 for a clear one
    difficulty = np.clip(0.45 * marginal + 0.2 * street / 3 + 0.25 * np.clip(np.log(pot_bb) / 5,
                         0, 1) + 0.1 * facing, 0.0, 1.0)

    # Human mood: a random walk, plus tilt that decays after each big lost pot (4 % of hands).
    tilt = np.zeros((p, t))
    big_loss = rng.random((p, t)) < 0.04
    for i in range(1, t):  # a loss at hand i-1 tilts hand i onwards
        tilt[:, i] = 0.85 * tilt[:, i - 1] + big_loss[:, i - 1]
    tilt *= is_h
    mood = np.cumsum(rng.normal(0.0, 0.08, (p, t)), axis=1) * is_h
    aggression = rng.normal(0.0, 0.5, (p, 1)) * is_h + mood + 0.9 * tilt
    looseness = rng.normal(0.0, 0.5, (p, 1)) * is_h + 0.5 * tilt
    action = _choose_actions(rng, strength, facing, aggression, looseness, tilt)

    # Bet sizes: humans mix preset buttons and typed sizes, bots keep to the solver's three.
    preset_share = np.where(kind == HUMAN, 0.55, np.where(kind == BOT, 1.0, 0.65))[:, None]
    fixed = rng.random((p, t)) < preset_share
    typed = np.round(np.exp(rng.normal(np.log(0.7), 0.45, (p, t))), 2)
    menu = np.where(is_h, PRESET_SIZES[rng.integers(0, 4, (p, t))],
                    SOLVER_SIZES[rng.integers(0, 3, (p, t))])
    size = np.where(fixed, menu, typed)
    to_call = np.round(np.exp(rng.normal(np.log(0.6), 0.5, (p, t))), 2)
    stack = np.round(np.exp(rng.normal(np.log(3.0), 0.7, (p, t))), 2)

    # Time to act (log ms). Humans: personal median 2-6 s, slower on hard decisions and as
    # fatigue sets in, heavy tail. Humanised bots: the same look without the difficulty link.
    z = (difficulty - 0.45) / 0.15  # about standardised
    log_median = rng.uniform(np.log(2000), np.log(6000), (p, 1))
    heavy_tail = rng.exponential(0.8, (p, t)) * (rng.random((p, t)) < 0.04)
    log_human = (log_median + rng.uniform(0.1, 0.45, (p, 1)) * z - 0.1 * tilt
                 + rng.uniform(0.0, 0.5, (p, 1)) * progress
                 + rng.uniform(0.45, 0.7, (p, 1)) * rng.standard_normal((p, t)) + heavy_tail)
    log_humanised = (log_median + rng.uniform(0.55, 0.8, (p, 1)) * rng.standard_normal((p, t))
                     + heavy_tail)
    jitter = rng.uniform(0.0, 0.6, (p, 1)) * (rng.random((p, 1)) < 0.5)  # half: near-constant
    log_bot = (rng.uniform(np.log(700), np.log(2500), (p, 1)) + jitter * rng.random((p, t))
               + rng.normal(0.0, 0.02, (p, t)))
    log_t = np.where(is_h, log_human, np.where(is_b, log_bot, log_humanised))
    time_to_act = np.minimum(np.round(np.exp(log_t)), TIME_LIMIT_MS)
    timed_out = time_to_act >= TIME_LIMIT_MS
    action = np.where(timed_out, np.where(facing, FOLD, CHECK), action)
    bet_frac = np.select([(action == BET) | (action == RAISE), action == CALL, action == ALL_IN],
                         [size, to_call, stack], 0.0)

    # Clicks: humans scatter around a personal bias and get sloppier with fatigue; bots hit a
    # fixed pixel or a uniform point in the button; humanised bots imitate the human scatter.
    bias = rng.normal(0.0, 4.0, (p, 1, 2))
    spread = (rng.uniform(8, 15, (p, 1)) * (1 + 0.3 * progress * is_h))[..., None]  # [P, T, 1]
    scatter = bias + spread * rng.standard_normal((p, t, 2))  # [P, T, 2]
    half = np.array(BUTTON_HALF_PX)
    pixel = np.round(rng.normal(0.0, 2.0, (p, 1, 2)))  # the bot's one target pixel
    uniform = rng.uniform(-half, half, (p, t, 2))
    bot_click = np.where((rng.random((p, 1)) < 0.5)[..., None], pixel, uniform)
    click = np.clip(np.where(is_b[..., None], bot_click, scatter), -half, half)
    straight = rng.uniform(80.0, 600.0, (p, t))
    curve = 1.0 + np.exp(rng.normal(np.log(0.25), 0.5, (p, t)))  # path / straight line
    path = straight * np.where(is_b, 1.0, curve)

    # Tables and timestamps: others act between a player's turns, faster with more tables.
    n_tables = np.where(kind == HUMAN, rng.choice([1, 2, 3, 4], p, p=[0.45, 0.3, 0.15, 0.1]),
                        np.where(kind == BOT, rng.integers(4, 13, p),
                                 rng.choice([1, 2, 3, 4], p, p=[0.2, 0.3, 0.3, 0.2])))[:, None]
    table_id = (1_000_000 + 16 * rng.permutation(p)[:, None]
                + np.floor(rng.random((p, t)) * n_tables).astype(np.int64))
    wait = rng.exponential(25_000.0, (p, t)) / n_tables
    breaks = rng.uniform(3, 15, (p, t)) * 60_000 * (rng.random((p, t)) < 0.015) * is_h
    hour = np.where(kind == HUMAN, rng.normal(20.0, 3.0, p) % 24, rng.uniform(0, 24, p))
    start = EPOCH_MS + (rng.integers(0, 30, p) * 24 + hour) * 3_600_000
    timestamp = np.round(start[:, None] + np.cumsum(wait + breaks + time_to_act, axis=1))

    return PokerLogs(
        street=street, position=position, action=action, bet_frac=bet_frac,
        strength=strength, difficulty=difficulty, time_to_act_ms=time_to_act,
        click_dx=click[..., 0], click_dy=click[..., 1], path_px=path, straight_px=straight,
        table_id=table_id, timestamp_ms=timestamp.astype(np.int64),
        player_id=rng.permutation(p) + 100_000, kind=kind, label=(kind != HUMAN).astype(np.int64),
    )


def _choose_actions(
    rng: np.random.Generator, strength: np.ndarray, facing: np.ndarray,
    aggression: np.ndarray, looseness: np.ndarray, tilt: np.ndarray,
) -> np.ndarray:
    """Sample an action per decision from a logit model (legal actions only), ``[P, T]``.

    With zero ``aggression``/``looseness``/``tilt`` (every bot) the frequencies depend on the
    hand and the situation only: a stationary, solver-like strategy.
    """
    logits = np.full((*strength.shape, len(ACTIONS)), -np.inf)  # [P, T, 6]; -inf = illegal
    logits[..., FOLD] = np.where(facing, 0.0, -np.inf)
    logits[..., CALL] = np.where(facing, 4.0 * (strength - 0.35) + looseness, -np.inf)
    logits[..., RAISE] = np.where(facing, 5.0 * (strength - 0.72) + aggression, -np.inf)
    logits[..., CHECK] = np.where(facing, -np.inf, 0.0)
    logits[..., BET] = np.where(facing, -np.inf, 3.0 * (strength - 0.55) + aggression)
    logits[..., ALL_IN] = 9.0 * (strength - 0.95) - 1.0 + 0.5 * aggression + tilt
    gumbel = -np.log(-np.log(rng.random(logits.shape)))  # Gumbel-max: a categorical draw
    return np.argmax(logits + gumbel, axis=-1)
