"""How far apart neighbouring references are in the synthetic world's aligned layout (docs/synthetic.md).

    python benchmarks/synthetic_spacing.py

For the default world and the synthetic study's (``reference_spacing = 20``),
the distance from each cross-area val query to the nearest other query of its
city: in the aligned layout that is the distance between neighbouring tiles.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from cvbench_plugins.datasets.synthetic import Synthetic

WORLDS = {
    "default world": {},
    "study world": dict(num_val_cities=4, train_pairs=500, val_pairs=800, reference_spacing=20, tile_size=48,
                        pano_size="24x96"),
}


def nearest_neighbour_distances(options: dict) -> np.ndarray:
    """Metres from every val query to the nearest other query of the same city."""
    pairs = Synthetic(**options).load("cross_area", "val")
    found = []
    for _, city in pairs.ground_meta.groupby("city"):
        points = city[["x", "y"]].to_numpy()
        distances, _ = cKDTree(points).query(points, k=2)
        found.append(distances[:, 1])
    return np.concatenate(found)


if __name__ == "__main__":
    for label, options in WORLDS.items():
        d = nearest_neighbour_distances(options)
        print(f"{label}: {len(d)} queries, nearest other query median {np.median(d):.1f} m, "
              f"10th percentile {np.percentile(d, 10):.1f} m, minimum {d.min():.1f} m")
