"""The shadow report's chart: champion against challenger, and both latencies (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

from pipelines.shadow_report import Rows, is_classifier


def draw(rows: Rows, path: Path) -> None:
    """A PNG at PATH: a confusion matrix (classifier) or a scatter of the values (regression), and latencies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    if is_classifier(rows.pairs):
        classes = sorted({p.champion for p in rows.pairs} | {p.challenger for p in rows.pairs})
        grid = [[sum(1 for p in rows.pairs if p.champion == a and p.challenger == b) for b in classes] for a in classes]
        left.imshow(grid, cmap="Blues")
        left.set_xticks(range(len(classes)), classes)
        left.set_yticks(range(len(classes)), classes)
        for i, line in enumerate(grid):
            for j, n in enumerate(line):
                left.text(j, i, str(n), ha="center", va="center")
        left.set_xlabel("challenger")
        left.set_ylabel("champion")
    else:
        champion = [p.champion for p in rows.pairs]
        left.scatter(champion, [p.challenger for p in rows.pairs], s=4, alpha=0.5)
        low, high = min(champion), max(champion)
        left.plot([low, high], [low, high], color="grey", linewidth=1)
        left.set_xlabel("champion")
        left.set_ylabel("challenger")
    left.set_title(f"{rows.challenger} vs champion, {len(rows.pairs)} instances")
    for side, values in rows.latency_ms.items():
        right.hist(values, bins=40, alpha=0.6, label=side)
    right.set_xlabel("latency (ms): champion per request, challenger from copy to answer")
    right.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
