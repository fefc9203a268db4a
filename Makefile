# One command each: `make demo` (see it work), `make run` (leave it running), `make test` (the suite).
PYTHON ?= python3.13
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install test demo run bench chaos clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

test: install
	$(PY) -m pytest -q

demo: install
	$(PY) -m devtools.demo

run: install
	$(PY) -m devtools.run

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
