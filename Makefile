# Deep Generative Models: an executable textbook.
#   make book    build the HTML book, executing every notebook once (cached between builds)
#   make test    all tests: system requirements and the linter first (seconds), then unit tests +
#                derivation checks, every notebook (nbmake),
#                the book built with warnings as errors, and a headless-Chromium check of the HTML
#   make slides  one reveal.js deck per notebook (after `make book`), in _build/slides/
#   make bench   benchmarks and notebook timings -> benchmarks/results.json and results.md
#   make clean   remove build outputs (keeps the virtual environment)
# Both main targets create or reuse a virtual environment in .venv (Python >= 3.10).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BUILD  := _build
# The test build's staging folder is not under _build/: nbmake skips paths containing `_build`.
TEST_BOOK := _build_test
export DGM_VENDOR_DIR := $(CURDIR)/_vendor/node_modules
export PYTHONHASHSEED := 0

.PHONY: book test slides bench clean env

env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python >= 3.10 is needed, found " + sys.version.split()[0] + " (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

book: env
	bash scripts/install_vendor.sh --optional
	$(VENV)/bin/jupyter-book build .
	@echo "The book: $(CURDIR)/$(BUILD)/html/index.html"

test:
	bash scripts/check_system.sh
	$(MAKE) --no-print-directory env
	$(VENV)/bin/ruff check .
	bash scripts/install_vendor.sh
	$(PY) -m pytest tests --ignore=tests/browser
	$(PY) scripts/stage_test_book.py $(TEST_BOOK)
	$(PY) -m pytest --nbmake --nbmake-timeout=900 --overwrite $(TEST_BOOK)/notebooks
	$(VENV)/bin/jupyter-book build $(TEST_BOOK) -W -n --keep-going
	$(PY) -m pytest tests/browser --book-html=$(TEST_BOOK)/_build/html --screenshots=$(BUILD)/screenshots

slides: env
	@test -d $(BUILD)/jupyter_execute/notebooks || (echo "run 'make book' first: slides are made from its executed notebooks" && exit 1)
	bash scripts/install_vendor.sh slides --optional
	$(PY) scripts/make_slides.py $(BUILD)/jupyter_execute/notebooks $(BUILD)/slides

bench: env
	$(PY) -m benchmarks.run

clean:
	rm -rf $(BUILD) $(TEST_BOOK) _vendor .pytest_cache
