# Deep Generative Models: an executable textbook.
#   make book    build the HTML book, executing every notebook once (cached between builds)
#   make test    all tests: system requirements and the linter first (seconds), then unit tests +
#                derivation checks, every notebook (nbmake),
#                the book built with warnings as errors, and a headless-Chromium check of the HTML
#   make pdf     the whole book as one PDF (TeX Live's xelatex), in _build/latex/book.pdf
#   make slides  one reveal.js lecture deck per chapter + a PDF handout of each (after `make book`),
#                in _build/slides/ (open _build/slides/index.html)
#   make student the student edition of every notebook (solutions replaced by stubs) in _build/student/
#   make homework FUNC=dgm.module.function TESTS="tests/test_x.py::test_a ..."
#                a copy of dgm with FUNC's body removed, plus its tests, in _build/homework/FUNC/
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
# Progress bars (tqdm) show in live runs; the notebooks the book shows run with them off, so a cell's
# printed lines stay together and no widget data is stored (dgm's bars honour TQDM_DISABLE).
BOOK_RUN := TQDM_DISABLE=1

.PHONY: book test pdf slides student homework bench clean env

env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python >= 3.10 is needed, found " + sys.version.split()[0] + " (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The PDF is built first when TeX Live's xelatex is there, so the HTML build can link it (both builds
# share the execution cache: each notebook still runs once).
book: env
	bash scripts/install_vendor.sh --optional
	@if command -v xelatex >/dev/null 2>&1; then $(BOOK_RUN) $(VENV)/bin/jupyter-book build . --builder pdflatex; \
	else echo "note: xelatex not found (see README): building the book without its PDF"; fi
	$(BOOK_RUN) $(VENV)/bin/jupyter-book build .
	@echo "The book: $(CURDIR)/$(BUILD)/html/index.html"

test:
	bash scripts/check_system.sh
	$(MAKE) --no-print-directory env
	$(VENV)/bin/ruff check .
	bash scripts/install_vendor.sh
	bash scripts/install_vendor.sh slides
	$(PY) -m pytest tests --ignore=tests/browser
	$(PY) scripts/stage_test_book.py $(TEST_BOOK)
	$(BOOK_RUN) $(PY) -m pytest --nbmake --nbmake-timeout=900 --overwrite $(TEST_BOOK)/notebooks
	@if command -v xelatex >/dev/null 2>&1; then $(VENV)/bin/jupyter-book build $(TEST_BOOK) --builder pdflatex -W -n --keep-going; \
	else echo "note: xelatex not found: the test build has no PDF"; fi
	$(VENV)/bin/jupyter-book build $(TEST_BOOK) -W -n --keep-going
	$(PY) scripts/make_slides.py --html $(TEST_BOOK)/_build/html --out $(TEST_BOOK)/_build/slides
	$(PY) -m pytest tests/browser --book-html=$(TEST_BOOK)/_build/html --slides-dir=$(TEST_BOOK)/_build/slides --screenshots=$(BUILD)/screenshots

slides: env
	@test -f $(BUILD)/html/index.html || (echo "run 'make book' first: the slides are made from the built HTML book" && exit 1)
	bash scripts/install_vendor.sh
	bash scripts/install_vendor.sh slides
	$(PY) scripts/make_slides.py --html $(BUILD)/html --out $(BUILD)/slides

pdf: env
	$(BOOK_RUN) $(VENV)/bin/jupyter-book build . --builder pdflatex
	@echo "The PDF: $(CURDIR)/$(BUILD)/latex/book.pdf (the next 'make book' links it from the landing page)"

student: env
	$(PY) scripts/make_student.py --notebooks notebooks --out $(BUILD)/student

homework: env
	@test -n "$(FUNC)" -a -n "$(TESTS)" || (echo 'usage: make homework FUNC=dgm.module.function TESTS="tests/test_x.py::test_a ..."' && exit 1)
	$(PY) scripts/make_homework.py $(FUNC) --tests $(TESTS) --out $(BUILD)/homework/$(FUNC) --force

bench: env
	$(PY) -m benchmarks.run

clean:
	rm -rf $(BUILD) $(TEST_BOOK) _vendor .pytest_cache
