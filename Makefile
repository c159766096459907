# Two entry points: `make book` (the main job) and `make test`. Each sets up .venv itself.
# Data and feature cache: tad.data.default_root() / default_cache() ($TAD_DATA / $TAD_CACHE when set), the same
# defaults as the CLI's. With no MVTec AD class found, the book tries the official download, else uses ELPV.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BOOK_PARAMS ?=
CHECK_ARGS ?=
# PRESET=paper: the paper's own configuration (tad.presets); the book stops at once without its weights or data.
PRESET ?=
# make publish PUSH=0: commit the HTML to the local gh-pages branch without pushing.
PUSH ?= 1

.PHONY: venv test book book-check bench clean publish book-archive

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

test: venv
	$(PY) -m pytest -q

book: venv
	$(PY) scripts/build_book.py $(if $(BOOK_PARAMS),--params $(BOOK_PARAMS)) $(if $(PRESET),--preset $(PRESET))

book-check: book
	bash scripts/check_book.sh $(CHECK_ARGS)

bench: venv
	$(PY) -m benchmarks.run

# The HTML already built (make book first) to the gh-pages branch with ghp-import, pushed to origin.
publish: venv
	$(PY) scripts/publish.py pages $(if $(filter 1,$(PUSH)),--push)

# The HTML already built, packed into _build/tad-book-html.tar.gz for readers offline.
book-archive: venv
	$(PY) scripts/publish.py archive

clean:
	rm -rf _build book/generated
