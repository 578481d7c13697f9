"""The markdown tables docs/performance.md shows, from the JSON that loading.py, throughput.py and recall.py wrote.

Usage::

    python benchmarks/perf/tables.py benchmarks/perf/results/gpu_check
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rate(value: float) -> str:
    """A rate with three significant figures at most, thousands separated (0.42, 31.5, 2,266)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def loader_table(report: dict) -> str:
    """Loader against step (``loading.py --against-step``)."""
    lines = [f"{report['device']}, {report['workers']} workers, {report['images']} files of each view",
             "", "| stage | batch | step (images/s) | host loader | host / step | device loader | device / step |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for stage, row in report["results"].items():
        lines.append(f"| {stage} | {row['batch']} | {rate(row['step_images_per_s'])} | "
                     f"{rate(row['host_loader_images_per_s'])} | {row['host_over_step']:.2f} | "
                     f"{rate(row['device_loader_images_per_s'])} | {row['device_over_step']:.2f} |")
    return "\n".join(lines)


def mfu_table(reports: dict[str, dict]) -> str:
    """Achieved TFLOP/s and MFU (``throughput.py``), one row per file and stage."""
    lines = ["| configuration | step | batch | images/s | GFLOP per step | TFLOP/s | reference peak | MFU |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for name, report in reports.items():
        config = f"{name}: {report['backbone']}, {report['device']}" + (", compiled" if report.get("compile") else "")
        peak = report.get("peak_tflops")
        for step, row in report["results"].items():
            mfu = f"{100 * row['mfu']:.1f}%" if row.get("mfu") is not None else "-"
            lines.append(f"| {config} | {step} | {row.get('batch', report['batch'])} | "
                         f"{rate(row['harness_images_per_s'])} | {rate(row['flops_per_step'] / 1e9)} | "
                         f"{row['tflops']:.3f} | {f'{peak:.3f}' if peak else '-'} ({report.get('peak_source')}) | "
                         f"{mfu} |")
    return "\n".join(lines)


def recall_table(reports: dict[str, dict]) -> str:
    """Exact ranking against the square-GEMM roof and the chunked products (``recall.py``), one row per file."""
    lines = ["| file | queries x references x dim | device | `recall` | roof (square GEMM rate) | `recall` / roof "
             "| chunked `torch.mm` | `recall` / chunked | peak RSS above inputs (`recall` / products) | load average |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, report in reports.items():
        config, results, ratios = report["config"], report["results"], report["ratios"]
        measured = {kind: result for kind, result in results.items() if "seconds_best" in result}
        time = {kind: f"{result['seconds_best']:.2f} s" for kind, result in measured.items()}
        peak = {kind: f"{result['peak_rss_above_inputs_mib']:,.0f}" for kind, result in measured.items()
                if "peak_rss_above_inputs_mib" in result}
        roof = f"{time['roof']} ({measured['roof']['gflops']:.0f} GFLOP/s)" if "roof" in measured else "-"
        over = {key: f"{value:.2f}" for key, value in ratios.items()}
        lines.append(f"| {name} | {config['queries']:,} x {config['references']:,} x {config['dim']} | "
                     f"{config['device']} | {time.get('recall', '-')} | {roof} | "
                     f"{over.get('recall_time_over_square_gemm_roof', '-')} | {time.get('chunked_matmul', '-')} | "
                     f"{over.get('recall_time_over_chunked_matmul', '-')} | "
                     f"{peak.get('recall', '-')} / {peak.get('chunked_matmul', '-')} MiB | "
                     f"{report['environment']['load_average'][0]:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    folder = parser.parse_args().folder
    loader = folder / "loader_vs_step.json"
    if loader.exists():
        print("Loader against step\n")
        print(loader_table(json.loads(loader.read_text())), end="\n\n")
    mfu = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("mfu_*.json"))}
    mfu = {name: report for name, report in mfu.items() if "peak_source" in report}
    if mfu:
        print("Model FLOPs utilisation\n")
        print(mfu_table(mfu), end="\n\n")
    recall = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("recall_*.json"))}
    if recall:
        print("Exact ranking\n")
        print(recall_table(recall), end="\n\n")


if __name__ == "__main__":
    main()
