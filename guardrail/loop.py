"""The retraining-loop simulator: ``python -m guardrail.loop recipe=est loop.anchoring=0.3``.

Trains a recipe, then for each round "deploys" the model on the next period, lets the world
answer with labels shaped by what it was shown, retrains on the grown data, and records every
round's model, predictions and metrics in ``DIR/round_<k>/`` plus ``DIR/loop.json``, the
feedback findings in ``DIR/findings.jsonl`` and the page ``DIR/report.html`` (``DIR`` is Hydra's
run directory). Training per round is a plain Lightning fit on the CPU with no guardrails, no
validation and no checkpoints: the loop is about the data, not the training run.

**EST, valuation anchoring** (``configs/loop/world/est.yaml``). The Ames sales are taken in
date order: the first ``loop.initial_share`` train the first model, the rest are cut into
``loop.rounds`` periods. Each period's sales are valued by the deployed model; a random
``loop.holdout`` share is priced without it. A served sale's observed price is
``log price = (1 - A) * log market + A * log valuation (+ loop.noise * N(0, 1))``, the market
value being the real sale price; a held-out sale's is the market value. ``A = 0`` is a world
that ignores the model. The next model trains on every observed price so far.

**REC, the exposure loop** (``configs/loop/world/rec.yaml``). A preference model (biased matrix
factorisation fitted on every real MovieLens rating) says how much each user likes each
movie, so movies nobody rated still get plausible ratings. The first model trains on each
user's first ``loop.initial_share`` of ratings; each round every user is shown ``loop.k``
movies they have not rated and rates ``loop.choices`` of them (chosen by preference).
``loop.policy``: ``model`` shows the deployed model's top-k, ``random`` random movies,
``mixed`` the top-k with each slot replaced by a random movie with probability
``loop.explore``.

Examples:
    python -m guardrail.loop recipe=est loop.rounds=4 loop.anchoring=0.3 hydra.run.dir=out/a3
    python -m guardrail.loop recipe=rec loop.policy=model
    python -m guardrail.loop recipe=rec loop.policy=mixed loop.explore=0.5
    python -m guardrail.loop recipe=est --cfg job      # print the composed config

"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from guardrail.errors import ConfigError, GuardrailError
from guardrail.io import write_json, write_jsonl
from guardrail.report.feedback import write_loop_html

log = logging.getLogger("guardrail.loop")
POLICIES = ("model", "random", "mixed")
WORLDS = ("est", "rec")
EXIT_USAGE = 2
_PREFERENCES: dict[tuple[int, ...], np.ndarray] = {}  # the last preference model fitted


def run(cfg: DictConfig) -> dict[str, Any]:
    """Simulate the configured retraining loop; returns (and writes) ``loop.json``'s content.

    Args:
        cfg: The composed config (``configs/loop/loop.yaml``).

    Raises:
        ConfigError: An unknown recipe or policy, or a loop key out of range.

    """
    import torch

    from guardrail.environment import thread_budget

    _check(cfg)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads, _ = thread_budget(cfg.get("threads", "auto"))
    torch.set_num_threads(threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    world = {"est": _EstWorld, "rec": _RecWorld}[cfg.recipe_name](cfg, out)
    rounds = world.simulate()
    findings = world.monitor.findings()
    result = {
        "recipe": cfg.recipe_name, "seed": int(cfg.seed),
        "loop": OmegaConf.to_container(cfg.loop, resolve=True), "rounds": rounds,
        "summary": world.monitor.summary(),
        "findings": [f.to_dict() for f in findings],
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(time.process_time() - cpu_start, 1), "torch_threads": threads,
    }
    write_json(out / "loop.json", result)
    write_jsonl(out / "findings.jsonl", result["findings"])
    write_loop_html(out, result)
    return result


def _check(cfg: DictConfig) -> None:
    loop, problems = cfg.loop, []
    if cfg.get("recipe_name") not in WORLDS:
        problems.append(f"recipe={cfg.get('recipe_name')} has no feedback world; the loop "
                        "simulates `recipe=est` (valuation anchoring) and `recipe=rec` "
                        "(exposure)")
    if int(loop.rounds) < 1:
        problems.append(f"`loop.rounds={loop.rounds}` must be >= 1")
    if int(loop.epochs) < 1:
        problems.append(f"`loop.epochs={loop.epochs}` must be >= 1")
    if not 0 < float(loop.initial_share) < 1:
        problems.append(f"`loop.initial_share={loop.initial_share}` must be in (0, 1)")
    if cfg.get("recipe_name") == "est":
        if not 0 <= float(loop.anchoring) <= 1:
            problems.append(f"`loop.anchoring={loop.anchoring}` must be in [0, 1]")
        if not 0 <= float(loop.holdout) < 1:
            problems.append(f"`loop.holdout={loop.holdout}` must be in [0, 1)")
    if cfg.get("recipe_name") == "rec":
        if loop.policy not in POLICIES:
            problems.append(f"`loop.policy={loop.policy}` must be one of {', '.join(POLICIES)}")
        if not 0 <= float(loop.explore) <= 1:
            problems.append(f"`loop.explore={loop.explore}` must be in [0, 1]")
        if not 1 <= int(loop.choices) <= int(loop.k):
            problems.append(f"`loop.choices={loop.choices}` must be in [1, loop.k={loop.k}]")
    if problems:
        raise ConfigError("loop config: " + "; ".join(problems) + ". Fix each with an override,"
                          " e.g. `python -m guardrail.loop recipe=est loop.rounds=4`.")


def _fit(cfg: DictConfig, module: Any, dataset: Any, seed: int) -> None:
    """One quiet CPU fit: no guardrails, validation, checkpoints, logger or progress bar."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    pl.seed_everything(seed, workers=True, verbose=False)
    loader = DataLoader(dataset, batch_size=int(cfg.loop.batch_size), shuffle=True)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=int(cfg.loop.epochs), logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0, deterministic=True,
        default_root_dir=cfg.paths.output_dir)
    with warnings.catch_warnings():  # no validation on purpose
        warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
        trainer.fit(module, train_dataloaders=loader)
    module.eval()


def _write_round(out: Path, k: int, module: Any, metrics: dict[str, Any],
                 predictions: list[dict[str, Any]], name: str) -> None:
    import torch

    folder = out / f"round_{k}"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(module.net.state_dict(), folder / "model.pt")
    write_json(folder / "metrics.json", metrics)
    write_jsonl(folder / name, predictions)


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2))) if len(a) else float("nan")


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b))) if len(a) else float("nan")


class _EstWorld:
    """Ames sales in date order; observed prices pulled toward the deployed valuations."""

    def __init__(self, cfg: DictConfig, out: Path) -> None:
        from guardrail.feedback import FeedbackMonitor

        self.cfg, self.out = cfg, out
        self.monitor = FeedbackMonitor(thresholds=cfg.loop.get("thresholds"))

    def simulate(self) -> list[dict[str, Any]]:
        import torch

        from guardrail.preprocess import TabularPreprocessor, records_of

        cfg, loop = self.cfg, self.cfg.loop
        dm = hydra.utils.instantiate(cfg.data, _convert_="all")
        dm.setup()
        frame = dm.frame
        month = frame["Year_Sold"].to_numpy() * 12 + frame["Mo_Sold"].to_numpy() - 1
        order = np.argsort(month, kind="stable")
        if dm.max_train_living_area is not None:  # De Cock's outliers, as the recipe drops them
            order = order[frame["Gr_Liv_Area"].to_numpy()[order] <= dm.max_train_living_area]
        n_init = round(float(loop.initial_share) * len(order))
        initial, periods = order[:n_init], np.array_split(order[n_init:], int(loop.rounds))
        # every sale as a client sends it, row for row with the frame
        records = records_of(frame, dm.numeric + dm.categorical)
        self.pre = pre = TabularPreprocessor.fit(
            [records[i] for i in initial], dm.numeric, dm.categorical, dm.log_features)
        x_num, x_cat = pre.transform(records)
        market = np.log(frame["Sale_Price"].to_numpy(float))
        observed = np.full(len(frame), np.nan)
        observed[initial] = market[initial]
        rng = np.random.default_rng(int(cfg.seed))
        train_idx, rows = initial, []
        a, holdout, noise = float(loop.anchoring), float(loop.holdout), float(loop.noise)
        for k, period in enumerate(periods, start=1):
            module = self._train(dm, x_num, x_cat, observed, train_idx, int(cfg.seed) * 100 + k)
            shadow = (self._train(dm, x_num, x_cat, observed, train_idx,
                                  int(cfg.seed) * 100 + k + 50) if loop.shadow else None)
            with torch.no_grad():
                pred = module(x_num[period], x_cat[period]).reshape(-1).double().numpy()
                shadow_pred = (shadow(x_num[period], x_cat[period]).reshape(-1).double().numpy()
                               if shadow is not None else None)
            served = rng.random(len(period)) >= holdout
            y = np.where(served, (1 - a) * market[period] + a * pred, market[period])
            y = y + noise * rng.standard_normal(len(period))
            observed[period] = y
            self.monitor.log_predictions(
                [{"id": int(i), "prediction": float(p), "served": bool(s), "round": k,
                  **({"shadow": float(q)} if shadow_pred is not None else {})}
                 for i, p, s, q in zip(period, pred, served, shadow_pred if shadow_pred
                                       is not None else pred, strict=True)])
            self.monitor.log_labels({int(i): float(v) for i, v in zip(period, y, strict=True)})
            metrics = {
                "round": k, "train_records": len(train_idx), "deployed_records": len(period),
                "served": int(served.sum()),
                "period": f"{_ym(month[period[0]])} to {_ym(month[period[-1]])}",
                "rmse_market": _rmse(pred, market[period]),
                "rmse_observed_served": _rmse(pred[served], y[served]),
                "rmse_holdout": _rmse(pred[~served], y[~served]),
                "rmse_market_served": _rmse(pred[served], market[period][served]),
                "mae_observed_served": _mae(pred[served], y[served]),
                "mae_holdout": _mae(pred[~served], y[~served]),
            }
            # the mean absolute error: a round's RMSE on ~130 held-out sales is ruled by a
            # few partial sales
            self.monitor.log_metric(k, "mae_log", influenced=metrics["mae_observed_served"],
                                    untouched=metrics["mae_holdout"], higher_is_better=False)
            _write_round(self.out, k, module, metrics, [
                {"id": int(i), "month": _ym(month[i]), "prediction": round(float(p), 5),
                 "market": round(float(market[i]), 5), "observed": round(float(v), 5),
                 "served": bool(s)} for i, p, v, s in zip(period, pred, y, served, strict=True)],
                "predictions.jsonl")
            rows.append(metrics)
            log.info("round %d: %s", k, metrics)
            train_idx = np.concatenate([train_idx, period])
        return rows

    def _train(self, dm: Any, x_num: Any, x_cat: Any, observed: np.ndarray,
               idx: np.ndarray, seed: int) -> Any:
        import torch
        from torch.utils.data import TensorDataset

        cfg = self.cfg
        y = torch.tensor(observed[idx], dtype=torch.float32)
        net = hydra.utils.instantiate(
            cfg.model, _convert_="all", n_num=x_num.shape[1],
            cardinalities=self.pre.encoding.cardinalities, target_mean=float(y.mean()),
            target_std=float(y.std()))
        module = hydra.utils.instantiate(cfg.module, _convert_="all", net=net,
                                         feature_names=dm.numeric + dm.categorical)
        _fit(cfg, module, TensorDataset(x_num[idx], x_cat[idx], y), seed)
        return module


def _ym(month: int) -> str:
    return f"{int(month) // 12}-{int(month) % 12 + 1:02d}"


class _RecWorld:
    """MovieLens users who rate only what they are shown, liking it as a preference model says."""

    def __init__(self, cfg: DictConfig, out: Path) -> None:
        from guardrail.feedback import FeedbackMonitor

        self.cfg, self.out = cfg, out
        self.monitor = FeedbackMonitor(thresholds=cfg.loop.get("thresholds"))

    def simulate(self) -> list[dict[str, Any]]:
        import torch

        cfg, loop = self.cfg, self.cfg.loop
        dm = hydra.utils.instantiate(cfg.data, _convert_="all")
        dm.setup()
        frame = dm.frame.sort_values(["timestamp", "movieId"], kind="stable")
        n_users, n_items = len(dm.user_index), len(dm.item_index)
        key = (len(frame), n_users, n_items, int(loop.preference_dim))
        if key not in _PREFERENCES:  # the same for every seed and policy: fit it once
            _PREFERENCES.clear()
            _PREFERENCES[key] = _preferences(
                frame["user"].to_numpy(), frame["item"].to_numpy(),
                frame["rating"].to_numpy(np.float32), n_users, n_items,
                int(loop.preference_dim), seed=0)
        pref = _PREFERENCES[key]
        first = frame.groupby("user").cumcount() < np.ceil(
            frame.groupby("user")["item"].transform("size") * float(loop.initial_share))
        users = frame.loc[first, "user"].to_numpy()
        items = frame.loc[first, "item"].to_numpy()
        rng = np.random.default_rng(int(cfg.seed))
        k, choices, rows = int(loop.k), int(loop.choices), []
        for r in range(1, int(loop.rounds) + 1):
            module = self._train(dm, users, items, n_items, int(cfg.seed) * 100 + r)
            seen = np.zeros((n_users, n_items), dtype=bool)
            seen[users, items] = True
            with torch.no_grad():
                scores = module.net(torch.arange(n_users)).double().numpy()
            recs = _recommend(scores, seen, k, loop.policy, float(loop.explore), rng)
            # each user rates `choices` shown movies: Gumbel top-k of preference / temperature
            shown_pref = np.take_along_axis(pref, recs, 1) / float(loop.temperature)
            pick = np.argsort(-(shown_pref + rng.gumbel(size=recs.shape)), 1)[:, :choices]
            new_items = np.take_along_axis(recs, pick, 1).ravel()
            new_users = np.repeat(np.arange(n_users), choices)
            stats = self.monitor.log_exposure(r, recs.tolist(), n_items,
                                              interactions=new_items.tolist(),
                                              training_items=items.tolist())
            hit = np.take_along_axis(pref, recs, 1)
            metrics = {"round": r, "train_interactions": len(items),
                       "mean_preference_shown": round(float(hit.mean()), 4),
                       "mean_popularity_shown": round(float(np.log1p(np.bincount(
                           items, minlength=n_items))[recs].mean()), 4),
                       **{n: round(v, 4) for n, v in stats.items()}}
            _write_round(self.out, r, module, metrics, [
                {"userId": int(dm.user_index.index[u]),
                 "movieIds": [int(dm.item_index.index[i]) for i in recs[u]]}
                for u in range(n_users)], "recommendations.jsonl")
            rows.append(metrics)
            log.info("round %d: %s", r, metrics)
            users = np.concatenate([users, new_users])
            items = np.concatenate([items, new_items])
        return rows

    def _train(self, dm: Any, users: np.ndarray, items: np.ndarray, n_items: int,
               seed: int) -> Any:
        import torch
        from torch.utils.data import TensorDataset

        cfg, kw = self.cfg, dict(dm.net_kwargs())
        counts = np.bincount(items, minlength=n_items)
        kw["n_ratings"] = torch.from_numpy(counts).float()
        kw["item_ids"] = torch.from_numpy(np.where(counts > 0, np.arange(1, n_items + 1), 0))
        net = hydra.utils.instantiate(cfg.model, _convert_="all", **kw)
        module = hydra.utils.instantiate(cfg.module, _convert_="all", net=net,
                                         feature_names=["userId", "movieId"])
        _fit(cfg, module, TensorDataset(torch.from_numpy(users), torch.from_numpy(items)), seed)
        return module


def _preferences(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int,
                 n_items: int, dim: int, seed: int, steps: int = 300) -> np.ndarray:
    """``[n_users, n_items]`` ratings of a biased matrix factorisation fitted on every rating.

    Example:
        >>> p = _preferences(np.array([0, 0, 1]), np.array([0, 1, 1]),
        ...                  np.array([5.0, 1.0, 2.0], dtype=np.float32), 2, 3, 2, seed=0)
        >>> p.shape, bool(p[0, 0] > p[0, 1])
        ((2, 3), True)

    """
    import torch

    g = torch.Generator().manual_seed(seed)
    u, i = torch.from_numpy(users).long(), torch.from_numpy(items).long()
    r = torch.from_numpy(ratings).float()
    params = [torch.zeros(n_users, requires_grad=True), torch.zeros(n_items, requires_grad=True),
              (0.1 * torch.randn(n_users, dim, generator=g)).requires_grad_(),
              (0.1 * torch.randn(n_items, dim, generator=g)).requires_grad_()]
    bu, bi, pu, qi = params
    mu = float(r.mean())
    opt = torch.optim.Adam(params, lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        pred = mu + bu[u] + bi[i] + (pu[u] * qi[i]).sum(1)
        loss = ((pred - r) ** 2).mean() + 0.05 * (
            (pu[u] ** 2).sum(1) + (qi[i] ** 2).sum(1) + bi[i] ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        full = mu + bu[:, None] + bi[None, :] + pu @ qi.T
    return full.clamp(0.5, 5.0).double().numpy()


def _recommend(scores: np.ndarray, seen: np.ndarray, k: int, policy: str, explore: float,
               rng: np.random.Generator) -> np.ndarray:
    """``[n_users, k]`` unseen items per user under ``policy``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s = np.array([[3.0, 2.0, 1.0, 0.0]])
        >>> _recommend(s, np.array([[True, False, False, False]]), 2, "model", 0.0, rng).tolist()
        [[1, 2]]

    """
    masked = np.where(seen, -np.inf, scores)
    random_scores = np.where(seen, -np.inf, rng.random(scores.shape))
    if policy == "random":
        return np.argsort(-random_scores, 1)[:, :k]
    top = np.argsort(-masked, 1)[:, :k]
    if policy == "model" or explore <= 0:
        return top
    out = top.copy()
    for u in range(len(out)):
        n_random = rng.binomial(k, explore)
        if n_random == 0:
            continue
        others = random_scores[u].copy()
        others[top[u, : k - n_random]] = -np.inf
        out[u, k - n_random:] = np.argsort(-others)[:n_random]
    return out


@hydra.main(version_base="1.3", config_path="pkg://guardrail.configs", config_name="loop/loop")
def _app(cfg: DictConfig) -> None:
    try:
        result = run(cfg)
    except GuardrailError as err:
        print(f"guardrail: error: {err}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    for f in result["findings"]:
        print(f"[{f['check']}] at {f['where']}: {f['message']}")
    print(f"loop: {len(result['rounds'])} rounds in {result['wall_s']} s "
          f"({result['cpu_s']} s CPU); {cfg.paths.output_dir}/loop.json and report.html")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m guardrail.loop``: check the recipe, then hand over to Hydra."""
    argv = sys.argv[1:] if argv is None else argv
    recipes = [a.partition("=")[2] for a in argv if a.startswith("recipe=")]
    if recipes and recipes[-1] not in WORLDS:
        print(f"guardrail: error: recipe={recipes[-1]} has no feedback world; the loop "
              f"simulates {', '.join(f'recipe={r}' for r in WORLDS)} "
              "(configs/loop/world/).", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.argv = [sys.argv[0], *argv]
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # a fit per round: Lightning's start-up lines would bury the loop's own
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.ERROR)
    _app()


if __name__ == "__main__":
    main()
