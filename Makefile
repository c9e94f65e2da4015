# remote-settings-lambdas: the commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STACK := $(VENV)/bin/python testing/stack.py
BIN := target/release/remote-settings-lambdas
# cargo-nextest when the machine has it (it runs each test in its own process), else cargo test.
TEST_RUNNER := $(shell cargo nextest --version >/dev/null 2>&1 && echo "cargo nextest run --workspace --no-fail-fast" || echo "cargo test --workspace --no-fail-fast")

.PHONY: test lint demo venv clean-stack bench-writer

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
	$(STACK) demo -- $(BIN) validate_changes_collection

## The writer-side commands (consistency_checks, refresh_signature) on a seeded stack of 150
## collections / 50,000 records: wall time, CPU and requests per collection.
bench-writer: venv
	cargo build --release
	$(STACK) run -- $(VENV)/bin/python testing/bench_writer.py --bin $(BIN) --seed

clean-stack:
	rm -rf .stack
