# One command each: `make demo` (see it work), `make run` (leave it running), `make test` (the suite).
PYTHON ?= python3.13
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VERSION := 3.3.30

.PHONY: install test infra-check chromium demo run bench chaos clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov has its own virtualenv: its dependencies must not move the app's pins
.venv-checkov/.installed:
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

install: $(VENV)/.installed node_modules/.installed

# two workers, each with its own world (Azurite, simulators, host: tests/conftest.py), a test file to one worker
test: install infra-check chromium
	$(PY) -m pytest -q -n 2 --dist loadfile

# The status page test looks at the page in headless Chromium: Debian's package, installed when absent
# and apt can (root); without it that test checks the same figures in the HTML alone.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
	  >/dev/null 2>&1; } || echo "chromium not installed: the status page test checks its HTML only"

infra-check: .venv-checkov/.installed
	CHECKOV=.venv-checkov/bin/checkov bash infra/check.sh

bench: install
	$(PY) -m devtools.bench

# the workload under faults, then the outage table on an accelerated clock; both print, either failing fails
chaos: install
	$(PY) -m devtools.chaos; workload=$$?; $(PY) -m devtools.outages; outages=$$?; \
	  test $$workload = 0 && test $$outages = 0

demo: install
	$(PY) -m devtools.demo

run: install
	$(PY) -m devtools.run

clean:
	rm -rf $(VENV) .venv-checkov node_modules .pytest_cache .hypothesis
