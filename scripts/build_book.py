"""Build the book: execute every notebook with papermill, then Jupyter Book (Sphinx) without re-executing.

Each jupytext source in `notebooks/` listed in `_toc.yml` is converted in memory, run by papermill with
its default parameters (plus any ``-p name value`` given here, and per-page values from ``--params FILE``)
and written to `book/generated/`. A notebook whose source, parameters, `tad` code and data are unchanged
since its last successful run is not run again. Then `jupyter-book build` runs with warnings as errors.
Any failing notebook fails the build (one line naming it and where its executed copy is). One build at a
time: a second one started beside it waits, then reuses what the first computed. Pages write their
downloads under `book/generated/data/` ($TAD_PAGE_OUTPUT, see `tad.book.page.output_dir`).

`--only` works from a fresh clone: the HTML holds the pages computed so far (this run's and any earlier
run's), with a table of contents cut to them; the introduction restates only those.

First of all the data step: where MVTec AD classes are missing under the data root, the official
download is tried once (checked, resumable); offline it prints one line saying how to place the data
by hand, and the book goes on with what is there (ELPV, installed with the requirements, at the least).

    python scripts/build_book.py                         # everything
    python scripts/build_book.py --only 02_layers        # one notebook (and the introduction), then the HTML
    python scripts/build_book.py --params ci/small.yml   # per-page parameters ({page: {name: value}})
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "generated"
FAILED = ROOT / "_build" / "failed"
PARTIAL = ROOT / "_build" / "partial"  # table of contents and configuration of a book cut to the pages computed
# Links to pages a cut book lacks stay plain text instead of failing the build (the full build still checks them).
PARTIAL_SUPPRESS = ["ref.doc", "ref.ref", "myst.xref_missing"]
LAST = "intro"  # restates the other pages' glued values, so it runs after them, whenever any page runs


def notebooks_in_toc() -> list[str]:
    """Names of the generated notebooks the table of contents lists, in order."""
    toc = (ROOT / "_toc.yml").read_text()
    files = [line.split(":", 1)[1].strip() for line in toc.splitlines()
             if line.strip().startswith(("file:", "- file:")) or line.startswith("root:")]
    return [Path(f).name for f in files if f.startswith("book/generated/")]


def load_yaml(text: str, what: str):
    """``text`` parsed as YAML, or exit with one line naming ``what`` and the parser's complaint."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        sys.exit(f"[book] {what}: not valid YAML ({problem})")


def read_params(path: Path) -> dict[str, dict]:
    """The per-page parameters file ``{page: {name: value}}``; exit with one line when unreadable or malformed."""
    try:
        text = path.read_text()
    except OSError as err:
        sys.exit(f"[book] --params {path}: cannot read it ({err.strerror})")
    per_page = load_yaml(text, f"--params {path}") or {}
    if not isinstance(per_page, dict) or not all(isinstance(v, dict) for v in per_page.values()):
        sys.exit(f"[book] --params {path}: expected a mapping {{page name: {{parameter: value}}}}")
    return per_page


def check_device(parameters: dict[str, dict]) -> None:
    """Exit with one line naming ``device`` when a page is given a value torch does not read as a device."""
    given = {str(p["device"]) for p in parameters.values() if "device" in p}
    if not given:
        return
    import torch

    for value in sorted(given):
        try:
            torch.device(value)
        except (RuntimeError, ValueError):
            sys.exit(f"[book] parameter device {value!r}: not a torch device; expected e.g. cpu, cuda, cuda:0, mps")


def data_fingerprint(root: str | None) -> str:
    """Names, sizes and modification times of every file under the data root: cheap, and changes with the data."""
    h = hashlib.sha256(str(root).encode())
    if root and Path(root).is_dir():
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                h.update(f"{os.path.relpath(os.path.join(dirpath, name), root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def fingerprint(source: Path, parameters: dict, data: str) -> str:
    h = hashlib.sha256(source.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    for f in sorted((ROOT / "tad").rglob("*")):
        if f.is_file() and f.suffix in (".py", ".csv"):
            h.update(f.read_bytes())
    h.update(data.encode())
    return h.hexdigest()


def declared(name: str) -> set[str]:
    """The names a page's `parameters` cell assigns."""
    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return {word.strip() for c in cells for line in c.source.splitlines()
            if "=" in line and not line.startswith((" ", "#")) for word in line.split("=")[0].split(",")}


def page_parameters(run: list[str], common: dict, per_page: dict) -> dict[str, dict]:
    """Each page's parameters: the ``-p`` ones it declares, then its own from ``--params``.

    A ``-p`` name no page of this run declares, or a ``--params`` name its page does not declare, stops the
    build with the valid names; a ``-p`` name some pages lack is passed to the others, and said.
    """
    valid = {name: declared(name) for name in run}
    for key in common:
        lacking = [n for n in run if key not in valid[n]]
        if len(lacking) == len(run):
            sys.exit(f"[book] -p {key}: no page of this run has that parameter; theirs are "
                     f"{sorted(set().union(*valid.values()))}")
        if lacking:
            print(f"[book] -p {key} is not a parameter of {', '.join(lacking)}: not passed there")
    for name, given in per_page.items():
        unknown = sorted(set(given) - valid[name]) if name in valid else []
        if unknown:
            sys.exit(f"[book] page {name}: unknown parameter(s) {unknown}; this page's parameters are {sorted(valid[name])}")
    return {name: {**{k: v for k, v in common.items() if k in valid[name]}, **per_page.get(name, {})}
            for name in run}


def execute(name: str, parameters: dict, data: str) -> None:
    source = ROOT / "notebooks" / f"{name}.py"
    if not source.exists():
        sys.exit(f"[book] _toc.yml lists book/generated/{name}, but notebooks/{name}.py does not exist")
    output, stamp = OUT / f"{name}.ipynb", OUT / f"{name}.fingerprint"
    if name == LAST:  # its text comes from the other pages' last runs
        data += "".join(p.read_text() for p in sorted(OUT.glob("*.fingerprint")) if p.stem != LAST)
    key = fingerprint(source, parameters, data)
    if output.exists() and stamp.exists() and stamp.read_text() == key:
        print(f"[book] {name}: unchanged, reusing {output.relative_to(ROOT)}")
        return
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    tmp = output.with_name(f".{name}.{os.getpid()}.running.ipynb")
    t0 = time.time()
    print(f"[book] {name}: running {parameters or ''}", flush=True)
    try:
        papermill.execute_notebook(nb, str(tmp), parameters=parameters, cwd=str(ROOT / "notebooks"),
                                   kernel_name="python3", progress_bar=False)
    except BaseException as err:
        where = ""
        if tmp.exists():  # keep the failed run for reading, out of the book's folder
            FAILED.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, FAILED / f"{name}.ipynb")
            where = f"; the executed notebook is {FAILED / f'{name}.ipynb'}"
        if not isinstance(err, Exception):  # Ctrl-C and the like: stop as asked
            raise
        if isinstance(err, papermill.PapermillExecutionError):
            what = f"{err.ename}: {' '.join(str(err.evalue).split())}" if err.evalue else err.ename
        else:
            what = f"{type(err).__name__}: {' '.join(str(err).split())}"
        given = f" with {', '.join(f'{k}={v!r}' for k, v in parameters.items())}" if parameters else ""
        sys.exit(f"[book] {name} FAILED{given}: {what[:500]}{where}")
    executed = nbformat.read(tmp, as_version=4)
    for cell in executed.cells:  # papermill's copy of the parameters is plumbing: not shown in the book
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.metadata["tags"].append("remove-cell")
    nbformat.write(executed, tmp)
    os.replace(tmp, output)  # only a notebook that ran to the end replaces the last good one
    stamp.write_text(key)
    print(f"[book] {name}: done in {time.time() - t0:.0f} s", flush=True)


def data_step(download: bool, data_root: str | None = None) -> str | None:
    """Say which data this build finds; try the MVTec AD download where classes are missing (one line offline).

    ``data_root``: the root the pages are given (``-p data_root``), reported as it is and never downloaded
    into (it may hold a user's own classes); None means `tad.data.default_root`, where the download goes.
    """
    from tad.data import MVTEC_CATEGORIES, available_categories, resolve_root
    from tad.download import ensure_mvtec

    root = resolve_root(data_root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        present, missing = ensure_mvtec(root, list(MVTEC_CATEGORIES), download=download and data_root is None)
    own = [c for c in available_categories(root) if c not in MVTEC_CATEGORIES] if root.is_dir() else []
    print(f"[book] data root {root}: {len(present)} of {len(MVTEC_CATEGORIES)} MVTec AD classes present"
          f"{' (' + ', '.join(present) + ')' if present else ''}"
          f"{'; other classes in MVTec layout: ' + ', '.join(own) if own else ''}; ELPV from the elpv-dataset package")
    if missing and download and data_root is not None:
        print("[book] note: the MVTec AD download is not tried into a root given with -p data_root")
    for w in caught:
        print(f"[book] note: {str(w.message).splitlines()[0]}")
    return str(root) if root else None


def toc_of_computed(toc: dict, computed: set[str]) -> dict:
    """``toc`` (the `_toc.yml` mapping) without the generated pages not in ``computed`` (notebook stems).

    Parts left without chapters are dropped; pages outside ``book/generated/`` stay.
    """
    def keep(entry: dict) -> bool:
        file = entry.get("file", "")
        return not file.startswith("book/generated/") or Path(file).name in computed

    parts = [{**part, "chapters": [c for c in part.get("chapters", []) if keep(c)]} for part in toc.get("parts", [])]
    return {**toc, "parts": [part for part in parts if part["chapters"]]}


def html(names: list[str]) -> None:
    """Jupyter Book over the executed notebooks, warnings as errors; exit with one line when it fails.

    When some pages of ``names`` have not been computed (``--only`` in a fresh clone) the book is cut to
    those that have: a table of contents listing them, and links to the others left as plain text.
    """
    computed = {n for n in names if (OUT / f"{n}.ipynb").exists()}
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going"]
    if computed != set(names):
        PARTIAL.mkdir(parents=True, exist_ok=True)
        toc = toc_of_computed(yaml.safe_load((ROOT / "_toc.yml").read_text()), computed)
        config = yaml.safe_load((ROOT / "_config.yml").read_text())
        sphinx = config.setdefault("sphinx", {})
        sphinx["local_extensions"] = {k: str(ROOT / v) for k, v in sphinx.get("local_extensions", {}).items()}
        options = sphinx.setdefault("config", {})
        options["suppress_warnings"] = [*options.get("suppress_warnings", []), *PARTIAL_SUPPRESS]
        (PARTIAL / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
        (PARTIAL / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        command += ["--toc", str(PARTIAL / "_toc.yml"), "--config", str(PARTIAL / "_config.yml")]
        print(f"[book] HTML of the {len(computed)} page(s) computed so far; not yet computed (build them with "
              f"--only or a full build): {', '.join(n for n in names if n not in computed)}")
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode:
        sys.exit(f"[book] jupyter-book build failed (exit {done.returncode}): see its warnings above")
    print(f"[book] HTML: {ROOT / '_build' / 'html' / 'index.html'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", help="notebooks to run (default: all in _toc.yml)")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="parameter for every notebook run (YAML value), e.g. -p device cuda")
    p.add_argument("--params", type=Path, help="YAML file {page name: {parameter: value}} for single pages")
    p.add_argument("--no-html", action="store_true", help="run the notebooks only")
    p.add_argument("--no-download", action="store_true", help="do not try the MVTec AD download")
    p.add_argument("--preset", help="a tad.presets name, e.g. paper: its page parameters, under --params and -p")
    args = p.parse_args()
    common = {k: load_yaml(v, f"-p {k} {v!r}") for k, v in args.p}
    per_page = read_params(args.params) if args.params else {}
    if args.preset:
        from tad.presets import book_parameters, get_preset
        try:
            preset = get_preset(args.preset)
        except ValueError as err:
            sys.exit(f"[book] --preset: {err}")
        pages = book_parameters(preset)
        per_page = {n: {**pages.get(n, {}), **(per_page or {}).get(n, {})} for n in {*pages, *(per_page or {})}}
    names = notebooks_in_toc()
    unknown = (set(args.only or []) | set(per_page or {})) - set(names)
    if unknown:
        sys.exit(f"[book] pages {sorted(unknown)}: not in _toc.yml; choices: {names}")
    run = args.only or names
    if LAST in names:  # any run ends with the page that restates the others
        run = [n for n in run if n != LAST] + [LAST]
    analysis = [n for n in run if n != LAST]  # -p is for the analysis pages, not the one that restates them
    parameters = {**page_parameters(analysis, common, per_page or {}),
                  **({LAST: (per_page or {}).get(LAST, {})} if LAST in run else {})}
    check_device(parameters)
    from tad.book.page import OUTPUT_ENV

    OUT.mkdir(parents=True, exist_ok=True)
    os.environ[OUTPUT_ENV] = str(OUT)  # the pages' kernels inherit it: their downloads go to book/generated/data
    # matplotlib's font list of this build's own environment: a list another matplotlib wrote to the shared
    # ~/.cache/matplotlib (e.g. the system's, without the bundled fonts) printed "findfont" lines into pages
    os.environ.setdefault("MPLCONFIGDIR", str(ROOT / "_build" / "matplotlib"))
    with FileLock(str(OUT / ".build.lock")):  # a second build waits here, then finds the pages done
        given_root = common.get("data_root")
        root = data_step(download=not args.no_download, data_root=None if given_root is None else str(given_root))
        if args.preset:  # the plan first; then missing weights or data stop the build at once, in one line
            from tad.presets import PresetUnavailable, check, plan
            print(plan(preset, root))
            try:
                check(preset, root)
            except PresetUnavailable as err:
                sys.exit(f"[book] {err}")
        data = data_fingerprint(root)
        for name in run:
            execute(name, parameters[name], data)
        if not args.no_html:
            html(names)


if __name__ == "__main__":
    main()
