# The README's commands. Each target sets up .venv itself when it is missing, so each works alone on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: reproduce test docs lab install constraints clean-env

# PYTHONWARNINGS: setuptools warns on every editable install (a boxed "!!" notice a new user takes for an error)
$(STAMP): settings.ini setup.py constraints.txt
	@echo "== setting up $(VENV) (torch's CUDA build is about 5 GB: a few minutes) =="
	@start=$$(date +%s); \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install -q --upgrade pip setuptools wheel 2>&1 | { grep -v '^WARNING: Location' || true; }; \
	  PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]" 2>&1 | { grep -v '^WARNING: Location' || true; }; \
	  $(BIN)/python -c "import cervix_nb, torch, torchvision, captum, tiffslide, nbdev" || { echo "install failed"; exit 1; }; \
	  echo "== $(VENV) ready in $$(( $$(date +%s) - start )) s, $$(du -sh $(VENV) | cut -f1) =="; \
	  echo $$(( $$(date +%s) - start )) > $(VENV)/.install_seconds
	@touch $(STAMP)

install: $(STAMP)

# settings.ini asks for ranges (a user's torch stays); the exact versions we test are constraints.txt's.
# After upgrading .venv and passing make test, write them again from it:
constraints: $(STAMP)
	@{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^cervix' ; } > constraints.new
	@mv constraints.new constraints.txt; echo "constraints.txt: $$(grep -vc '^#' constraints.txt) exact versions"

# The main job: every section that exists, at quick scale, on the embedded synthetic data.
reproduce: $(STAMP)
	CERVIX_SCALE=$${CERVIX_SCALE:-quick} $(BIN)/cervix-reproduce --readme README.md

# Notebooks stored clean, library = export of the notebooks, every notebook's inline tests, pytest, the Quarto
# site checked in Chromium; ends with a table of where the time went (.ci/timing.py).
T := $(BIN)/python .ci/timing.py
test: $(STAMP)
	@$(T) start
	@echo "== nbdev_clean (must change nothing) =="
	$(T) run "nbdev_clean (unchanged)" -- $(BIN)/python .ci/unchanged.py nbs -- $(BIN)/nbdev_clean
	@echo "== nbdev_export (must change nothing) =="
	$(T) run "nbdev_export (unchanged)" -- $(BIN)/python .ci/unchanged.py cervix_nb -- $(BIN)/nbdev_export
	@echo "== nbdev_test: every notebook in nbs/ =="
	$(T) run "nbdev_test (every notebook)" -- $(BIN)/python .ci/nbtest.py
	@echo "== pytest tests/ =="
	$(T) run "pytest tests/" -- $(BIN)/python -m pytest tests -q -p no:cacheprovider --durations=15 \
	  --junitxml=_timing/pytest.xml
	@echo "== docs: the Quarto site, checked in headless Chromium =="
	$(T) run "docs (Quarto build + Chromium check)" -- $(BIN)/python .ci/docs_check.py
	@$(T) report

# The docs site, rendered by Quarto (install it from quarto.org) into _docs/, as nbdev_docs renders it.
docs: $(STAMP)
	$(BIN)/python .ci/docs_check.py --build-only
	@echo "docs in _docs/ (open _docs/index.html)"

lab: $(STAMP)
	$(BIN)/jupyter lab nbs/

clean-env:
	rm -rf $(VENV)
