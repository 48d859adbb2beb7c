# rnn-conformance wiring. `make test` is what CI runs (through .ci/run).
#   make venv          .venv with core + frameworks (pinned, see requirements/)
#   make test          self-tests and suites in .venv, then the same in .venv-minimal
#   make test-minimal  core only: every framework case must skip with a reason, none may error
#   make report        python -m conformance run --out reports/latest (json, md, html, junit, claims.md)
#                      and the claims ledger page reports/claims.md
#   make matrix        every release of requirements/matrix.toml in its own venv, gated: reports/versions/
#   make bench         speed benchmarks (full sizes) -> reports/bench/ (pytest-benchmark JSON, report)
#   make gpu           every CUDA case against the frameworks of the CURRENT python (no venv, no network:
#                      for a borrowed GPU machine) -> $(GPU_OUT); a dry run without CUDA (README "GPU run")
#   make gpu-wheels    the wheels such a machine lacks (Keras 3, namex, optree; CPython 3.12) -> .whl/
#   make clean         remove venvs, caches, build output and local runs (rnn-conformance-runs/)
PYTHON ?= python3
PROFILE ?= ci
VENV := .venv
VENV_MIN := .venv-minimal
REQ := requirements
FULL_REQS := $(REQ)/core.txt $(REQ)/frameworks.txt $(REQ)/nodeps.txt $(REQ)/constraints.txt
MIN_REQS := $(REQ)/core.txt $(REQ)/constraints.txt
# A venv's stamp is named after a hash of its requirement files: when they change, the stamp
# is missing and the venv is re-installed; otherwise `make venv` does nothing.
FULL_STAMP := $(VENV)/.installed-$(shell cat $(FULL_REQS) | sha256sum | cut -c1-16)
MIN_STAMP := $(VENV_MIN)/.installed-$(shell cat $(MIN_REQS) | sha256sum | cut -c1-16)
# suites/ may be absent in a fresh clone while empty; tests/ always has tests, so exit code 5
# ("no tests collected") cannot happen.
TEST_PATHS := tests $(wildcard suites)
PIP := -m pip install --disable-pip-version-check --progress-bar off

.PHONY: venv venv-minimal test test-full test-minimal report matrix bench gpu gpu-wheels clean

venv: $(FULL_STAMP)
	@echo "==> $(VENV) is up to date"

$(FULL_STAMP):
	@echo "==> creating/updating $(VENV) (core + frameworks; ~90 s on first run)"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python $(PIP) -r $(REQ)/core.txt -r $(REQ)/frameworks.txt -c $(REQ)/constraints.txt
	$(VENV)/bin/python $(PIP) --no-deps -r $(REQ)/nodeps.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

venv-minimal: $(MIN_STAMP)
	@echo "==> $(VENV_MIN) is up to date"

$(MIN_STAMP):
	@echo "==> creating/updating $(VENV_MIN) (core only, no frameworks)"
	@test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python $(PIP) -r $(REQ)/core.txt -c $(REQ)/constraints.txt
	@rm -f $(VENV_MIN)/.installed-*
	@touch $@

test: test-full test-minimal

# One process per Keras backend (and one for tf-keras): the tests marked `keras` run again on
# the jax and torch backends, those marked `tf_keras` with TF_USE_LEGACY_KERAS=1; exit code 5
# (no such tests collected) is fine there. On JAX, where every new shape is an XLA compilation,
# `make test` runs the Keras-specific suites (padding, crashes, dropout, masks in time, kernels,
# wrappers, coverage); the registry-wide suites (smoke and gradient parity, batch permutation,
# error growth: ~7 min there) and the dropout fingerprints (~5 min: ~10^5 mask draws, each a JAX
# call) run on JAX in `make report`, not here, to keep `make test` near its 20-minute budget. The
# same configurations are compared on all three backends here by test_keras_cross_backend.py,
# and on tensorflow and torch every suite runs.
SKIP_ON_JAX := --deselect suites/test_fingerprints.py::test_fingerprint \
	--ignore suites/test_smoke_parity.py --ignore suites/test_gradient_parity.py \
	--ignore suites/test_batch_permutation.py --ignore suites/test_error_growth.py
test-full: venv
	@echo "==> tests with all frameworks ($(TEST_PATHS), hypothesis profile $(PROFILE); Keras on tensorflow)"
	KERAS_BACKEND=tensorflow $(VENV)/bin/python -m pytest $(TEST_PATHS) -m "not tf_keras" --hypothesis-profile=$(PROFILE)
	@for b in jax torch; do echo "==> suites marked keras, KERAS_BACKEND=$$b"; \
		KERAS_BACKEND=$$b $(VENV)/bin/python -m pytest suites -m keras --hypothesis-profile=$(PROFILE) -q \
		$$([ $$b = jax ] && echo "$(SKIP_ON_JAX)") || [ $$? -eq 5 ] || exit 1; done
	@echo "==> suites marked tf_keras, TF_USE_LEGACY_KERAS=1"; \
		TF_USE_LEGACY_KERAS=1 $(VENV)/bin/python -m pytest suites -m tf_keras --hypothesis-profile=$(PROFILE) -q \
		|| [ $$? -eq 5 ] || exit 1

# The report proves the rule: validate fails (exit 1) on any error or failed record, and on a
# skip/xfail without a reason, and lists them on stderr. Its "valid" line is silenced so that
# pytest's summary stays the last line of the run.
# Without frameworks: every suite (each framework case must skip with a reason), and the
# self-tests that check what an environment without frameworks does (the wheel and its run
# that compares nothing, the third-party adapter path, the layers and registries, the renders);
# the other self-tests need no framework either and ran in test-full already (~4 min saved).
MIN_TEST_PATHS := $(addprefix tests/,test_packaging.py test_run_merge_render.py test_registry.py \
	test_repro_imports.py test_suites_frameworks.py test_third_party_adapter.py test_layers.py \
	test_findings_registry.py test_cli_errors.py) $(wildcard suites)
test-minimal: venv-minimal
	@echo "==> tests without frameworks (suites and the self-tests about it, hypothesis profile $(PROFILE));"
	@echo "    then $(VENV_MIN)/report.json is checked: no error or failure, every skip has a reason"
	@rm -f $(VENV_MIN)/report.json; rc=0; $(VENV_MIN)/bin/python -m pytest $(MIN_TEST_PATHS) --hypothesis-profile=$(PROFILE) \
		--conformance-report=$(VENV_MIN)/report.json || rc=$$?; \
	$(VENV_MIN)/bin/python -m conformance validate $(VENV_MIN)/report.json \
		--fail-on error --fail-on failed --require-reasons > /dev/null || exit 1; \
	exit $$rc

report: venv
	@echo "==> conformance run -> reports/latest"
	$(VENV)/bin/python -m conformance run --out reports/latest --profile $(PROFILE) --claims reports/claims.md

# The version matrix (README "The version matrix", conformance/entry/matrix.py): one venv per
# release of requirements/matrix.toml (torch, TensorFlow + tf-keras, Keras on three backends,
# onnxruntime), each running the suites of its framework into reports/versions/<framework>-<version>/
# and removed afterwards; the gate between consecutive releases (gate-<framework>-<a>-to-<b>.md:
# a regression is a result, not a failure of this target); reports/versions/matrix.{json,md}. A
# release whose report matches its inputs is skipped, so an interrupted matrix resumes. About an
# hour on 2 cores from nothing (the Keras releases ~13 min each); ~6 GB of disk at most at once.
matrix: venv
	$(VENV)/bin/python -m conformance matrix $(MATRIX_ARGS)

# Speed benchmarks (README "Benchmarks"): suites/test_bench*.py with RNN_BENCH_FULL=1 (sizes small,
# medium, large; several alternating rounds), in three processes: Keras on tensorflow with every
# other framework and the reference vs torch, then the Keras benches again on jax and on torch.
# Their reports merge into reports/bench/report.json, .md, .html (the benchmarks section; rendered
# even when a bound fails), pytest-benchmark's JSON files into reports/bench/pytest-benchmark.json.
BENCH := RNN_BENCH_FULL=1 $(VENV)/bin/python -m pytest -p no:cacheprovider -q -rs
BENCH_PARTS := reports/bench/parts
bench: venv
	@mkdir -p $(BENCH_PARTS)
	@rm -f reports/bench/report.json reports/bench/report.md reports/bench/report.html $(BENCH_PARTS)/*
	@start=$$(date +%s); rc=0; \
	echo "==> [1/3] bench part main: KERAS_BACKEND=tensorflow, every path, the reference vs torch"; \
	KERAS_BACKEND=tensorflow $(BENCH) suites/test_bench.py suites/test_bench_reference.py \
		--benchmark-json=$(BENCH_PARTS)/main-benchmark.json --conformance-report=$(BENCH_PARTS)/main.json || rc=$$?; \
	for b in jax torch; do echo "==> bench part keras-$$b: the Keras benches, KERAS_BACKEND=$$b"; \
		KERAS_BACKEND=$$b $(BENCH) suites/test_bench.py -m keras --conformance-variant=keras-$$b \
		--benchmark-json=$(BENCH_PARTS)/keras-$$b-benchmark.json --conformance-report=$(BENCH_PARTS)/keras-$$b.json \
		|| rc=$$?; done; \
	$(VENV)/bin/python -m conformance merge $(BENCH_PARTS)/main.json $(BENCH_PARTS)/keras-jax.json \
		$(BENCH_PARTS)/keras-torch.json --out reports/bench || exit 1; \
	$(VENV)/bin/python -c "import sys; from conformance.core.bench import merge_benchmark_json as m; m(*sys.argv[1:])" \
		reports/bench/pytest-benchmark.json $(BENCH_PARTS)/main-benchmark.json \
		$(BENCH_PARTS)/keras-jax-benchmark.json $(BENCH_PARTS)/keras-torch-benchmark.json || exit 1; \
	echo "==> make bench: $$(( $$(date +%s) - start )) s, exit $$rc; reports/bench/report.md"; exit $$rc

# The GPU run (README "GPU run", conformance/entry/gpu.py): the tests marked gpu in three parts under
# time budgets (450 s in all), with whatever python3 is on the PATH and its installed frameworks.
GPU_OUT ?= rnn-conformance-runs/gpu
gpu:
	$(PYTHON) -m conformance gpu --out $(GPU_OUT)

gpu-wheels:
	$(PYTHON) -m conformance gpu-wheels .whl

clean:
	rm -rf $(VENV) $(VENV_MIN) .venv-tox .tox .matrix .pytest_cache .hypothesis .benchmarks build dist *.egg-info rnn-conformance-runs
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
