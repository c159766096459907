"""Run every benchmark, each in its own process (so its peak RSS is its own), then print the ratios.

Run: ``.venv/bin/python -m benchmarks.run [--device cuda] [--out artifacts/benchmarks] [--only extract grid flow]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import OUT_DIR, machine

BENCHMARKS = ("extract", "grid", "grid_scale", "flow")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda; the grid is numpy-only and ignores it")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for <benchmark>.json and summary.json")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only:
        out = args.out / f"{name}.json"
        out.unlink(missing_ok=True)
        module = "grid" if name == "grid_scale" else name
        cmd = [sys.executable, "-m", f"benchmarks.bench_{module}", "--out", str(out)]
        if name == "grid_scale":
            cmd = [*cmd[:-2], "--scale", "--out", str(args.out / "grid.json")]  # it writes grid_scale.json
        if not name.startswith("grid"):
            cmd += ["--device", args.device]
        subprocess.run(cmd, check=True)
        if out.exists():  # absent when the benchmark printed a skip (no CUDA)
            results[name] = json.loads(out.read_text())
    summary = {"machine": machine(), "ratios": ratios(results)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\nSummary (ratios measured side by side in this run)")
    for name, value in summary["ratios"].items():
        print(f"  {name:60s} {value}")
    print(f"JSON: {args.out}/")


def ratios(results: dict) -> dict[str, str]:
    out = {}
    if "extract" in results:
        r = results["extract"]
        for dtype, run in r["runs"].items():
            name = "tad extract (default workers)"
            out[f"extract {r['backbone']} {r['input_size']}px {dtype}: tad / bare img/s (target >= 0.9)"] = (
                f"{run['ratio_to_bare'][name]:.3f} ({run['images_per_s'][name]:.1f} / "
                f"{run['images_per_s']['bare forward']:.1f})")
    if "grid" in results:
        r = results["grid"]
        out["grid: tad / naive trials/s (target >= 5)"] = (
            f"{r['speedup']:.2f}x wall, {r['cpu_speedup']:.2f}x CPU; max |AUROC diff| {r['max_abs_diff']['auroc']:.2g}")
    if "grid_scale" in results:
        for name, run in results["grid_scale"]["runs"].items():
            out[f"grid on Dask, {name}: serial / {results['grid_scale']['workers']} workers wall (target >= 1.7 with flow)"] = (
                f"{run['speedup']:.2f}x ({run['serial_s']:.0f} / {run['parallel_s']:.0f} s, {run['trials']} trials); "
                f"worker peak RSS {max(run['worker_peak_rss_mb']):.0f} MB")
    if "flow" in results:
        r = results["flow"]
        out[f"flow share of a Lite0 grid, {r['n_classes']} classes"] = f"{r['projected_s_all_classes'] / 3600:.2f} h"
    for name, r in results.items():
        out[f"{name}: peak RSS of its process"] = f"{r['peak_memory']['self_mb']:.0f} MB"
    return out


if __name__ == "__main__":
    main()
