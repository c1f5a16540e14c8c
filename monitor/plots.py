"""One figure of small panels, one per category: the model card's plots share the layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["small_multiples"]


def small_multiples(
    names: list[str],
    draw: Callable[[object, str], str],
    path: Path,
    xlabel: str,
    ylabel: str,
    limit: float = 1.03,
) -> None:
    """``draw(ax, name)`` plots one panel and returns its title; 5 panels a row, PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 5
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        ax.set_title(draw(ax, name), fontsize=9)
        ax.set_xlim(-0.03, limit)
        ax.set_ylim(-0.03, limit)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.supxlabel(xlabel)
    fig.supylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
