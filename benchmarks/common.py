"""What the benchmarks share: data locations, interleaved timing, peak memory and JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from tad.data import default_cache, default_root

REPO = Path(__file__).resolve().parents[1]
CACHE_DIR = default_cache()  # the one default of the library, the CLI and the book
OUT_DIR = REPO / "artifacts" / "benchmarks"


def mvtec_root() -> Path:
    """MVTec AD folder: `tad.data.default_root` (``TAD_DATA`` if set, else the shared copy beside the checkout)."""
    return default_root()


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU seconds of each function, run in turn ``repeats`` times (A B C A B C ...).

    Interleaving exposes every side to the same drift in machine load, so ratios of medians are fair
    even when other processes share the cores. CPU seconds (user + system, this process and its waited-for
    children such as DataLoader workers) are less sensitive to that load than wall seconds.
    """
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            fn()
            times[name]["wall"].append(time.perf_counter() - t0)
            times[name]["cpu"].append(cpu_seconds() - c0)
    return times


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its terminated children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_memory_mb() -> dict[str, float]:
    """Peak resident set size (``getrusage`` maxrss) of this process and of its largest waited-for child."""
    to_mb = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20  # kB on Linux, bytes on macOS
    return {"self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mb,
            "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mb}


def machine() -> dict:
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "processor": platform.processor() or platform.machine(),
            "load_avg_1min": os.getloadavg()[0],
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def add_common_args(parser: argparse.ArgumentParser, name: str, device: bool = True) -> None:
    if device:
        parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--out", type=Path, default=OUT_DIR / f"{name}.json", help="JSON result file")


def finish(result: dict, out: Path) -> dict:
    """Add machine facts and peak memory to ``result`` and write it as JSON to ``out``."""
    result = {**result, "machine": machine(), "peak_memory": peak_memory_mb()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


def cuda_or_skip(device: str, what: str) -> bool:
    """True when ``device`` can run; prints a skip line and returns False when CUDA is asked for but absent."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"SKIP {what}: --device {device} asked for but CUDA is not available on this machine")
        return False
    return True


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
