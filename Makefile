# echotwist's two commands, and the steps behind them.
#
#   make run    set up .venv if needed, then run twistd -n echo on its default port
#   make test   set up if needed, then run every test and check
#   make docs   build the documentation (warnings are errors)
#
# Setting up is done once: each virtual environment carries a stamp file,
# remade only when setup.cfg or pyproject.toml changes.

PYTHON ?= python3
# The oldest Twisted that setup.cfg allows: the unit tests run on it too.
TWISTED_OLDEST := 24.7.0

VENV := .venv
OLDEST := .venv-oldest
BIN := $(VENV)/bin
# Editable, in compat mode: a plain editable install hides twisted/plugins/
# from twistd.
INSTALL := install -q --config-settings editable_mode=compat

.PHONY: run test unit unit-oldest live typecheck lint docs clean

run: $(VENV)/.stamp
	$(BIN)/twistd -n echo

# Every check runs (-k) even when one fails, so that one run shows them all;
# make still exits non-zero if any failed.
test:
	$(MAKE) -k unit unit-oldest live typecheck lint docs

unit: $(VENV)/.stamp
	$(BIN)/trial --temp-directory=_trial_temp echotwist

unit-oldest: $(OLDEST)/.stamp
	$(OLDEST)/bin/trial --temp-directory=_trial_temp-oldest echotwist

live: $(VENV)/.stamp
	$(BIN)/pytest -q

typecheck: $(VENV)/.stamp
	$(BIN)/mypy

lint: $(VENV)/.stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: $(VENV)/.stamp
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

$(VENV)/.stamp: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip $(INSTALL) -e '.[tls,metrics,bench,test,dev,docs]'
	touch $@

$(OLDEST)/.stamp: setup.cfg pyproject.toml
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip $(INSTALL) -e '.[test]' 'twisted==$(TWISTED_OLDEST)'
	touch $@

clean:
	rm -rf $(VENV) $(OLDEST) docs/_build _trial_temp _trial_temp-oldest
