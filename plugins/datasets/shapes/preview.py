"""A preview sheet of the shapes dataset: two items of every class, ground and aerial rendering side by side.

``python -m cvbench_plugins.datasets.shapes.preview docs/images/shapes_preview.png``
(``cvbench data preview`` shows random pairs labelled as panoramas and tiles;
this sheet is ordered by class, which is what this dataset is about).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cvbench.atomic import write_png

from .dataset import SPLIT, Shapes


def class_sheet(out: str | Path, per_class: int = 2, **options) -> Path:
    """One row per class: ``per_class`` items of the val subset, each as (ground, aerial)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset = Shapes(None, **{"val_images": 12 * per_class, **options})
    pairs = dataset.load(SPLIT, "val")
    names = list(dataset.classes)
    (gh, gw), (ah, aw) = dataset.image_sizes()["ground"], dataset.image_sizes()["aerial"]
    ratios = [gw / gh, aw / ah] * per_class
    fig, axes = plt.subplots(len(names), 2 * per_class, squeeze=False, gridspec_kw={"width_ratios": ratios},
                             figsize=(0.85 * sum(ratios), 1.1 * len(names) + 0.5))
    categories = pairs.ground_meta["category"].to_numpy()
    for row, name in enumerate(names):
        items = [i for i in range(pairs.num_queries) if categories[i] == name][:per_class]
        for k, item in enumerate(items):
            axes[row, 2 * k].imshow(pairs.ground[item])
            axes[row, 2 * k + 1].imshow(pairs.aerial[int(pairs.positives[item])])
            axes[row, 2 * k].set_title(f"{name} · item {item} · ground", fontsize=8, loc="left")
            axes[row, 2 * k + 1].set_title("aerial", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("shapes: each item drawn twice, independently (ground size left, aerial size right)")
    fig.tight_layout()
    return write_png(fig, out, dpi=72)


if __name__ == "__main__":
    print(class_sheet(sys.argv[1] if len(sys.argv) > 1 else "shapes_preview.png"))
