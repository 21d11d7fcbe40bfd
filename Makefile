# GRPO Studio. `make run`: install everything and start the app; `make test`: install and test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5000
STAMP := $(VENV)/.installed
# llama.cpp's GGUF converters (exports), from the llama-cpp-python source distribution on PyPI
LLAMA_CPP_VERSION := $(shell sed -n 's/^llama-cpp-python==//p' requirements.txt)
CONVERTER := .cache/llama.cpp-$(LLAMA_CPP_VERSION)/.complete
CATALOGS := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test test-fast bench clean browser translations i18n-extract

$(STAMP): requirements.txt requirements-dev.txt requirements-gpu.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -r requirements.txt -r requirements-dev.txt -c constraints.txt
	if nvidia-smi -L >/dev/null 2>&1; then $(PY) -m pip install -r requirements-gpu.txt; fi
	touch $@

$(CONVERTER): $(STAMP) tools/fetch_converter.py
	$(PY) tools/fetch_converter.py $(@D)
	touch $@

install: $(STAMP) $(CATALOGS) $(CONVERTER)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -d translations -l $*

# after changing texts: refresh messages.pot, the catalogs and translations/js_strings.json
i18n-extract: $(STAMP)
	$(PY) tools/i18n.py extract

# the browser tests drive Debian's chromium (Playwright's own browser download is not used)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

run: install
	$(PY) -m core.cli prepare-model
	$(PY) flask_app.py --host $(HOST) --port $(PORT)

test: install browser
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) bench/quickstart.py
	$(PY) bench/inference.py

clean:
	rm -rf $(VENV) .pytest_cache
