# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export GI_PORT ?= 8000

# Labels are drawn with Noto Sans CJK (SIL Open Font License), from Debian's fonts-noto-cjk.
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench install install-dev migrate demo clean help fonts browser

help:
	@echo "make run    - set up, migrate the embedded SQLite database, load demo data, serve on http://127.0.0.1:$(GI_PORT)"
	@echo "make test   - set up and run the whole test suite (add GI_TEST_DATABASE_URL for PostgreSQL+PostGIS)"
	@echo "make bench  - run the benchmarks under bench/ (they print ratios)"

fonts:
	@if [ -z "$$GI_LABEL_FONT" ] && [ ! -f $(CJK_FONT) ]; then \
	  echo "installing the CJK label font (fonts-noto-cjk)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq fonts-noto-cjk; \
	fi

# The browser tests drive Debian's chromium (never a downloaded build); GI_CHROMIUM points elsewhere.
CHROMIUM ?= $(or $(GI_CHROMIUM),/usr/bin/chromium)

browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed fonts
install-dev: $(VENV)/.installed-dev fonts

migrate: install
	$(BIN)/gi-service db upgrade

demo: migrate
	$(BIN)/gi-service demo load

run: demo
	$(BIN)/gi-service serve

test: install-dev browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# bench.load drives gunicorn with wrk and keeps the rate limiter's counters in a private redis-server.
bench: install-dev
	@missing=""; command -v wrk >/dev/null || missing="wrk"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing for bench.load"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing \
	    || echo "could not install$$missing: bench.load will say what is missing"; \
	fi
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache
