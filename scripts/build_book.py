"""Build the book: execute every notebook with papermill, then Jupyter Book (Sphinx) without re-executing.

Each jupytext source in `notebooks/` listed in `_toc.yml` is converted in memory, run by papermill with
its default parameters (plus any ``-p name value`` given here) and written to `book/generated/`. A
notebook whose source, parameters and `tad` code are unchanged since its last successful run is not run
again. Then `jupyter-book build` runs with warnings as errors. Any failing notebook fails the build.

    python scripts/build_book.py                  # everything
    python scripts/build_book.py --only 02_layers  # one notebook, then the HTML
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import papermill
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "generated"


def notebooks_in_toc() -> list[str]:
    """Names of the generated notebooks the table of contents lists, in order."""
    toc = (ROOT / "_toc.yml").read_text()
    files = [line.split("file:")[1].strip() for line in toc.splitlines() if "file:" in line]
    return [Path(f).name for f in files if f.startswith("book/generated/")]


def fingerprint(source: Path, parameters: dict) -> str:
    h = hashlib.sha256(source.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    for f in sorted((ROOT / "tad").rglob("*")):
        if f.is_file() and f.suffix in (".py", ".csv"):
            h.update(f.read_bytes())
    h.update(os.environ.get("TAD_DATA", "").encode())
    return h.hexdigest()


def execute(name: str, parameters: dict) -> None:
    source = ROOT / "notebooks" / f"{name}.py"
    if not source.exists():
        sys.exit(f"_toc.yml lists book/generated/{name}, but notebooks/{name}.py does not exist")
    output, stamp = OUT / f"{name}.ipynb", OUT / f"{name}.fingerprint"
    key = fingerprint(source, parameters)
    if output.exists() and stamp.exists() and stamp.read_text() == key:
        print(f"[book] {name}: unchanged, reusing {output.relative_to(ROOT)}")
        return
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    tmp = output.with_suffix(".running.ipynb")
    t0 = time.time()
    print(f"[book] {name}: running", flush=True)
    papermill.execute_notebook(nb, str(tmp), parameters=parameters, cwd=str(ROOT / "notebooks"),
                               kernel_name="python3", progress_bar=False)
    os.replace(tmp, output)  # only a notebook that ran to the end replaces the last good one
    stamp.write_text(key)
    print(f"[book] {name}: done in {time.time() - t0:.0f} s", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", help="notebooks to run (default: all in _toc.yml)")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="parameter for every notebook run (YAML value), e.g. -p device cuda")
    p.add_argument("--no-html", action="store_true", help="run the notebooks only")
    args = p.parse_args()
    parameters = {k: yaml.safe_load(v) for k, v in args.p}
    shared = ROOT.parent / "shared" / "data" / "mvtec_ad"  # the Makefile's default too
    if "TAD_DATA" not in os.environ and shared.is_dir():
        os.environ["TAD_DATA"] = str(shared)
    OUT.mkdir(parents=True, exist_ok=True)
    names = notebooks_in_toc()
    unknown = set(args.only or []) - set(names)
    if unknown:
        sys.exit(f"--only {sorted(unknown)}: not in _toc.yml; choices: {names}")
    for name in args.only or names:
        execute(name, parameters)
    if not args.no_html:
        subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going"],
                       check=True, cwd=ROOT)
        print(f"[book] HTML: {ROOT / '_build' / 'html' / 'index.html'}")


if __name__ == "__main__":
    main()
