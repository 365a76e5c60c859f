"""PNG plots of an explanation, drawn with matplotlib's Agg backend (no display needed).

Each function writes one file atomically and returns its name; :func:`attribution_plots`
draws all that apply to a result of :func:`guardrail.attribution.explain`.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> result = {"features": [{"name": "a"}, {"name": "b"}],
    ...           "methods": {"permutation": {"importance": [2.0, 1.0],
    ...                       "ci_low": [1.5, 0.5], "ci_high": [2.5, 1.5]}}}
    >>> attribution_plots(d, result, {"ig_maps": {}, "occlusion_maps": {}, "time_profiles": {}})
    {'global': 'global_importance.png'}

"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from guardrail.io import write_bytes

TOP = 15
LABELS = {"permutation": "permutation", "integrated_gradients": "Integrated Gradients"}


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes(path, buf.getvalue())
    return path.name


def global_importance(path: Path, result: dict[str, Any]) -> str:
    """Bars of the top features by each method (scaled to the method's largest), with CIs."""
    names = [f["name"] for f in result["features"]]
    methods = {k: v for k, v in result["methods"].items() if v.get("importance")}
    first = methods.get("permutation") or next(iter(methods.values()))
    order = sorted(range(len(names)), key=lambda i: -(first["importance"][i] or 0))[:TOP]
    fig = _figure(7, 0.9 + 0.32 * len(order))
    ax = fig.add_subplot()
    height = 0.8 / len(methods)
    for m, (key, values) in enumerate(methods.items()):
        scale = max((v for v in values["importance"] if v is not None), default=1.0) or 1.0
        ys = [len(order) - 1 - r + (m - (len(methods) - 1) / 2) * height
              for r in range(len(order))]
        mid = [(values["importance"][i] or 0) / scale for i in order]
        low = [max(mid[r] - (values["ci_low"][i] or 0) / scale, 0) for r, i in enumerate(order)]
        high = [max((values["ci_high"][i] or 0) / scale - mid[r], 0)
                for r, i in enumerate(order)]
        ax.barh(ys, mid, height=height, xerr=[low, high], label=LABELS.get(key, key),
                capsize=2)
    ax.set_yticks(range(len(order)), [names[i] for i in reversed(order)])
    ax.set_xlabel("importance (share of the method's largest), 95% bootstrap interval")
    ax.legend(loc="lower right")
    return _save(fig, path)


def heat_maps(path: Path, grid: Any, maps: dict[str, Any], samples: int = 4) -> str:
    """Per sample: the input's first channel, then each method's heat map."""
    n = min(samples, *(len(m) for m in maps.values()))
    fig = _figure(2.6 * (1 + len(maps)), 2.2 * n)
    axes = fig.subplots(n, 1 + len(maps), squeeze=False)
    for s in range(n):
        panels = [("input (channel 0)", grid[s, 0].float().cpu())]
        panels += [(name, m[s]) for name, m in maps.items()]
        for ax, (title, image) in zip(axes[s], panels, strict=True):
            ax.imshow(image.numpy(), cmap="viridis" if title.startswith("input") else "magma")
            ax.set_title(f"{title}, sample {s}", fontsize=8)
            ax.set_axis_off()
    return _save(fig, path)


def time_profile(path: Path, profile: Any) -> str:
    """Mean |IG| per time step of a sequence input."""
    fig = _figure(6, 2.4)
    ax = fig.add_subplot()
    ax.bar(range(len(profile)), profile.numpy())
    ax.set_xlabel("time step")
    ax.set_ylabel("mean |attribution|")
    return _save(fig, path)


def attribution_plots(folder: Path, result: dict[str, Any], arrays: dict[str, Any]) -> dict[str,
                                                                                           str]:
    """Every plot that applies; returns ``{kind: file name}`` (files inside ``folder``)."""
    folder = Path(folder)
    files = {"global": global_importance(folder / "global_importance.png", result)}
    for i, ig_map in arrays["ig_maps"].items():
        maps = {"Integrated Gradients": ig_map}
        if i in arrays["occlusion_maps"]:
            maps["occlusion"] = arrays["occlusion_maps"][i]
        files[f"heat_maps_input{i}"] = heat_maps(folder / f"heat_maps_input{i}.png",
                                                 arrays["inputs"][i], maps)
    for i, profile in arrays["time_profiles"].items():
        files[f"time_profile_input{i}"] = time_profile(folder / f"time_profile_input{i}.png",
                                                       profile)
    return files
