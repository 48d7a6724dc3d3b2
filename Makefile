# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export GI_PORT ?= 8000

# Labels are drawn with Noto Sans CJK (SIL Open Font License), from Debian's fonts-noto-cjk.
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-main bench install install-dev migrate demo clean help fonts browser topology

help:
	@echo "make run    - set up, migrate the embedded SQLite database, load demo data, serve on http://127.0.0.1:$(GI_PORT)"
	@echo "make test   - set up and run the whole test suite (add GI_TEST_DATABASE_URL for PostgreSQL+PostGIS)"
	@echo "make test-main - the main tier alone (everything not marked heavy), on every core"
	@echo "make bench  - run the benchmarks under bench/ (they print ratios)"

fonts:
	@if [ -z "$$GI_LABEL_FONT" ] && [ ! -f $(CJK_FONT) ]; then \
	  echo "installing the CJK label font (fonts-noto-cjk)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq fonts-noto-cjk; \
	fi

# The browser tests drive Debian's chromium headless shell (never a downloaded build); GI_CHROMIUM points
# elsewhere (e.g. /usr/bin/chromium, the full browser, which the tests also pass on at about twice the time).
CHROMIUM ?= $(or $(GI_CHROMIUM),/usr/bin/chromium-headless-shell)

browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "installing Debian's chromium headless shell for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium-headless-shell; \
	fi

# The heavy tier's topology tests run PostgreSQL's server binaries, Debian's pgbouncer and nginx on private
# ports; the packages are installed without letting them start their own daemons.
topology:
	@if [ ! -x /usr/sbin/pgbouncer ] || [ ! -x /usr/sbin/nginx ]; then \
	  echo "installing Debian's pgbouncer and nginx for the topology tests"; \
	  made=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
	    $(SUDO) chmod +x /usr/sbin/policy-rc.d; made=1; fi; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq pgbouncer nginx; \
	  [ -n "$$made" ] && $(SUDO) rm -f /usr/sbin/policy-rc.d; true; \
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

# The main tier on every core (pytest-xdist: each worker has its own SQLite file and PostgreSQL schema), then
# the heavy tier alone (pytest -m heavy: whole deployments, e.g. a worker killed under load; they measure
# and start servers of their own, so they run one at a time). TEST_WORKERS=0 runs the main tier in one
# process. Exit status 5 (nothing collected) of the heavy tier is fine: without PostgreSQL it has nothing.
TEST_WORKERS ?= auto
test: test-main
	$(BIN)/python -m pytest -m heavy $(PYTEST_ARGS) || [ $$? = 5 ]

test-main: install-dev browser topology
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# bench.load drives gunicorn with wrk, keeps the rate limiter's counters in a private redis-server and
# its data in a private PostgreSQL cluster (initdb of the installed PostgreSQL, with PostGIS).
PG_BIN ?= $(or $(GI_BENCH_PG_BIN),/usr/lib/postgresql/15/bin)
bench: install-dev
	@missing=""; command -v wrk >/dev/null || missing="wrk"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -f /usr/share/postgresql/15/extension/postgis.control ] || missing="$$missing postgresql-15-postgis-3"; \
	[ -x $(PG_BIN)/initdb ] || missing="$$missing postgresql-15"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing for bench.load"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing \
	    || echo "could not install$$missing: bench.load will say what is missing"; \
	fi
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache
