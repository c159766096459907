"""The book build script's inputs, failures and cut table of contents (scripts/build_book.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_synthetic_mvtec

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_book.py"


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("build_book", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


@pytest.mark.parametrize("args, expected", [
    (["--params", "/missing/params.yml"], "--params /missing/params.yml: cannot read it"),
    (["-p", "classes", "[small"], "-p classes '[small': not valid YAML"),
    (["--only", "no_such_page"], "pages ['no_such_page']: not in _toc.yml"),
    (["-p", "device", "xyz", "--only", "02_layers"], "parameter device 'xyz': not a torch device"),
])
def test_bad_input_stops_the_build_with_one_line_and_no_traceback(args, expected):
    done = _run(*args)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_a_params_file_that_is_not_a_mapping_of_pages_is_named(build, tmp_path):
    bad = tmp_path / "p.yml"
    bad.write_text("- 02_layers\n")
    with pytest.raises(SystemExit, match=r"--params .*p\.yml: expected a mapping"):
        build.read_params(bad)
    bad.write_text("02_layers: {classes: [a\n")
    with pytest.raises(SystemExit, match=r"--params .*p\.yml: not valid YAML"):
        build.read_params(bad)
    bad.write_text("02_layers: {classes: [bottle]}\n")
    assert build.read_params(bad) == {"02_layers": {"classes": ["bottle"]}}


def test_a_failing_page_is_named_with_its_executed_copy_and_the_build_exits_1(build, tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "broken.py").write_text(
        '# %% tags=["parameters"]\nwhich = "none"\n\n# %%\nraise ValueError(f"device {which!r} is not known")\n')
    monkeypatch.setattr(build, "ROOT", tmp_path)
    monkeypatch.setattr(build, "OUT", tmp_path / "generated")
    monkeypatch.setattr(build, "FAILED", tmp_path / "failed")
    (tmp_path / "generated").mkdir()
    with pytest.raises(SystemExit) as stop:
        build.execute("broken", {"which": "xyz"}, "data")
    message = str(stop.value.code)
    assert "\n" not in message and message.startswith("[book] broken FAILED with which='xyz'")
    assert "ValueError: device 'xyz' is not known" in message
    assert str(tmp_path / "failed" / "broken.ipynb") in message and (tmp_path / "failed" / "broken.ipynb").is_file()
    assert not list((tmp_path / "generated").iterdir())  # nothing half-run in the book's folder


def test_the_data_step_reports_the_data_root_it_is_given_and_downloads_nothing_into_it(build, tmp_path, capsys,
                                                                                      monkeypatch):
    make_synthetic_mvtec(tmp_path, "parts", n_train=2, n_test_good=1, n_test_defective=1, size=16)
    tried = []
    monkeypatch.setattr("tad.download.download_mvtec", lambda root, **kw: tried.append(root))
    root = build.data_step(download=True, data_root=str(tmp_path))
    out = capsys.readouterr().out
    assert root == str(tmp_path) and f"data root {tmp_path}: 0 of 15 MVTec AD classes present" in out
    assert "other classes in MVTec layout: parts" in out and tried == []


def test_the_cut_table_of_contents_keeps_computed_pages_and_every_other_file(build):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    cut = build.toc_of_computed(toc, {"intro", "02_layers"})
    files = [c["file"] for part in cut["parts"] for c in part["chapters"]]
    generated = [f for f in files if f.startswith("book/generated/")]
    assert generated == ["book/generated/02_layers"]
    others = [c["file"] for part in toc["parts"] for c in part["chapters"] if not c["file"].startswith("book/gen")]
    assert [f for f in files if not f.startswith("book/generated/")] == others
    assert cut["root"] == toc["root"] and all(part["chapters"] for part in cut["parts"])
    assert build.toc_of_computed(toc, set(build.notebooks_in_toc())) == toc


def test_html_of_a_fresh_clone_cuts_the_book_to_the_computed_pages_and_fails_in_one_line(build, tmp_path,
                                                                                        monkeypatch):
    generated = tmp_path / "generated"
    generated.mkdir()
    for name in ("intro", "02_layers"):
        (generated / f"{name}.ipynb").write_text("{}")
    monkeypatch.setattr(build, "OUT", generated)
    monkeypatch.setattr(build, "PARTIAL", tmp_path / "partial")
    calls = []
    monkeypatch.setattr(build.subprocess, "run", lambda command, cwd: calls.append(command) or
                        subprocess.CompletedProcess(command, 0))
    build.html(build.notebooks_in_toc())
    (command,) = calls
    toc = yaml.safe_load(Path(command[command.index("--toc") + 1]).read_text())
    listed = [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("book/gen")]
    assert listed == ["book/generated/02_layers"] and toc["root"] == "book/generated/intro"
    config = yaml.safe_load(Path(command[command.index("--config") + 1]).read_text())
    assert {"ref.doc", "myst.xref_missing"} <= set(config["sphinx"]["config"]["suppress_warnings"])
    assert all(Path(p).is_absolute() and Path(p).is_dir() for p in config["sphinx"]["local_extensions"].values())
    assert "-W" in command  # still warnings as errors
    for name in build.notebooks_in_toc():  # every page computed: the book as configured, nothing cut
        (generated / f"{name}.ipynb").write_text("{}")
    build.html(build.notebooks_in_toc())
    assert "--toc" not in calls[-1] and "--config" not in calls[-1]
    monkeypatch.setattr(build.subprocess, "run", lambda command, cwd: subprocess.CompletedProcess(command, 2))
    with pytest.raises(SystemExit, match=r"^\[book\] jupyter-book build failed \(exit 2\)"):
        build.html(build.notebooks_in_toc())
