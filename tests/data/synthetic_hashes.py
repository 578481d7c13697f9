"""SHA-256 of every array the synthetic generator makes for a few option sets: the byte-identity record.

``synthetic_hashes.json`` beside this script was written by running it on
the generator as committed before issue 20 made it faster (``git archive``
of ``plugins/datasets/synthetic`` into a folder, then ``--source FOLDER``);
``tests/test_synthetic_identity.py`` recomputes the hashes with today's
generator and requires them unchanged. Rewrite the record only together
with a bump of ``GENERATOR_VERSION``.

Usage::

    python tests/data/synthetic_hashes.py [--source PACKAGE_FOLDER] [--out tests/data/synthetic_hashes.json]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

# name -> (options, split); every subset of the split is hashed. "slow" cases build full-size cities.
CASES: dict[str, dict[str, Any]] = {
    "five_styles_small": {"options": {"city_size": 192, "train_pairs": 40, "val_pairs": 20}, "split": "cross_area"},
    "offset_changed_rolled": {
        "options": {"city_size": 160, "seed": 7, "layout": "offset", "temporal_change": 1.0,
                    "unknown_orientation": True, "pano_size": (24, 96), "tile_size": 32, "num_train_cities": 2,
                    "num_val_cities": 1, "train_pairs": 30, "val_pairs": 15},
        "split": "same_area"},
    "spaced_still_wide": {
        "options": {"city_size": 256, "seed": 3, "temporal_change": 0.0, "reference_spacing": 6.0,
                    "pano_size": (64, 256), "tile_metres": 48.0, "tile_size": 24, "styles": ("suburb", "downtown"),
                    "num_train_cities": 1, "num_val_cities": 1, "train_pairs": 12, "val_pairs": 8},
        "split": "cross_area"},
    "small_world": {"options": {"train_pairs": 160, "val_pairs": 160}, "split": "cross_area", "slow": True},
    "default_world": {"options": {}, "split": "cross_area", "slow": True},
}


def load_package(folder: Path, name: str = "synthetic_under_test") -> ModuleType:
    """Import the synthetic package in ``folder`` under ``name`` (its modules import each other relatively)."""
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def case_hashes(package: str, case: dict[str, Any], **generate_kwargs: Any) -> dict[str, str]:
    """``subset/field`` -> SHA-256 of the array's dtype, shape and bytes (metadata: its CSV as cached)."""
    options_module = importlib.import_module(f"{package}.options")
    generate_module = importlib.import_module(f"{package}.generate")
    options = options_module.SyntheticOptions.parse(case["options"])
    out = {}
    for subsets in generate_module.generation_units(case["split"]):
        for subset, arrays in generate_module.generate(options, case["split"], subsets, **generate_kwargs).items():
            for field in ("ground", "aerial", "positives", "semi_positives"):
                array = getattr(arrays, field)
                if array is not None:
                    header = f"{array.dtype.str}{array.shape}".encode()
                    out[f"{subset}/{field}"] = digest(header + array.tobytes())
            for field in ("ground_meta", "aerial_meta"):
                out[f"{subset}/{field}"] = digest(getattr(arrays, field).to_csv(index=False).encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="folder of the synthetic package (default: the installed one)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("synthetic_hashes.json"))
    args = parser.parse_args()
    if args.source is not None:
        load_package(args.source)
        package = "synthetic_under_test"
    else:
        package = "cvbench_plugins.datasets.synthetic"
    generator_version = importlib.import_module(f"{package}.options").GENERATOR_VERSION
    record = {"generator_version": generator_version,
              "cases": {name: case_hashes(package, case) for name, case in CASES.items()}}
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
