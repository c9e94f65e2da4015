# remote-settings-lambdas: the commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STACK := $(VENV)/bin/python testing/stack.py
BIN := target/release/remote-settings-lambdas
# cargo-nextest when the machine has it (it runs each test in its own process), else cargo test.
TEST_RUNNER := $(shell cargo nextest --version >/dev/null 2>&1 && echo "cargo nextest run --workspace --no-fail-fast" || echo "cargo test --workspace --no-fail-fast")

.PHONY: test lint demo bench venv clean-stack

## The Python side of the test stack (Kinto + signer + changes, moto), from PyPI.
$(VENV)/.installed: testing/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r testing/requirements.txt
	touch $@

venv: $(VENV)/.installed

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets --workspace -- -D warnings

## Format and lint gates, then every unit and integration test against a real stack started once.
test: venv lint
	cargo build --workspace --all-targets
	$(STACK) run -- $(TEST_RUNNER)

## Start a local stack, publish a few signed collections, and run the main job against it.
demo: venv
	cargo build --release
	$(STACK) demo -- $(BIN) validate_signature

## Benchmarks on a stack seeded with 160 collections / 52,000 records (not part of `make test`):
## see testing/bench.py for the options and how to add a measurement. Results in .bench/.
bench: venv
	$(VENV)/bin/python testing/bench.py $(BENCH_ARGS)

clean-stack:
	rm -rf .stack
