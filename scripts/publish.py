"""Publish the built book: commit `_build/html` to the gh-pages branch (ghp-import), or pack it into one archive.

    python scripts/publish.py pages            # commit _build/html to the local gh-pages branch, no push
    python scripts/publish.py pages --push     # and push it to origin (what `make publish` does)
    python scripts/publish.py archive          # _build/tad-book-html.tar.gz, for readers offline

GitHub Pages serves the gh-pages branch as it is; the `.nojekyll` file ghp-import adds stops Jekyll from
hiding Sphinx's `_static` folders. Run in the repository the branch belongs to (git works in the current
folder).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


def built(html: Path) -> Path:
    """``html`` if it holds a built book (an index.html), else exit with what to run."""
    if not (html / "index.html").is_file():
        sys.exit(f"publish: {html / 'index.html'} not found; build the book first (make book)")
    return html


def pages(html: Path, *, branch: str = "gh-pages", remote: str = "origin", push: bool = False,
          message: str = "Book HTML (scripts/publish.py)") -> None:
    """Commit the files of ``html`` as the whole tree of ``branch`` (with .nojekyll); push only if asked."""
    import ghp_import

    ghp_import.ghp_import(str(built(html)), mesg=message, branch=branch, remote=remote, push=push,
                          nojekyll=True, no_history=False)
    print(f"publish: {html} committed to branch {branch}" + (f", pushed to {remote}" if push else " (not pushed)"))


def archive(html: Path, out: Path) -> Path:
    """Pack ``html`` into the gzipped tar ``out`` under one top folder named like the archive, for offline reading."""
    top = out.name.removesuffix(".tar.gz")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(built(html), arcname=top)
    tmp.replace(out)  # a reader never finds a half-written archive
    print(f"publish: {out} ({out.stat().st_size / 1e6:.1f} MB); unpack and open {top}/index.html")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("pages", help="commit the HTML to a gh-pages branch")
    sp.add_argument("--html", type=Path, default=HTML)
    sp.add_argument("--branch", default="gh-pages")
    sp.add_argument("--remote", default="origin")
    sp.add_argument("--push", action="store_true", help="push the branch to --remote (never in tests)")
    sp = sub.add_parser("archive", help="pack the HTML into one .tar.gz")
    sp.add_argument("--html", type=Path, default=HTML)
    sp.add_argument("--out", type=Path, default=ROOT / "_build" / "tad-book-html.tar.gz")
    args = p.parse_args(argv)
    if args.command == "pages":
        pages(args.html, branch=args.branch, remote=args.remote, push=args.push)
    else:
        archive(args.html, args.out)


if __name__ == "__main__":
    main()
