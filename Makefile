# Two entry points: `make book` (the main job) and `make test`. Each sets up .venv itself.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export TAD_DATA ?= $(abspath ../shared/data/mvtec_ad)
export TAD_CACHE ?= $(abspath .cache/tad)

.PHONY: venv test book book-check bench clean

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
	$(PY) scripts/build_book.py

book-check: book
	bash scripts/check_book.sh

bench: venv
	$(PY) -m benchmarks.run

clean:
	rm -rf _build book/generated
