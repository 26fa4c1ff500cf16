# Two environments, so the serving one never holds TensorFlow:
#   .venv-serve  the service only (requirements/serve.lock)
#   .venv        training + serving + dev tools (requirements/ci.lock), used by the tests
# and a third, optional one for Ray Serve (~760 MB): .venv-ray (requirements/ray.lock), `make test-ray`.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test test-ray lint report lock audit bench bench-quick clean .venv-triton .venv-profile

.venv-serve/.installed: requirements/serve.lock pyproject.toml
	$(PYTHON) -m venv .venv-serve
	.venv-serve/bin/pip install -q -r requirements/serve.lock
	.venv-serve/bin/pip install -q --no-deps -e .
	touch $@

.venv/.installed: requirements/ci.lock pyproject.toml
	$(PYTHON) -m venv .venv
	.venv/bin/pip install -q -r requirements/ci.lock
	.venv/bin/pip install -q --no-deps -e .
	touch $@

## Triton as a benchmark peer (bench/triton.py): PyTriton under Python 3.12 (its backend stub links
## libpython3.12.so.1.0, which bench/triton.py puts on LD_LIBRARY_PATH from the interpreter's prefix).
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python) $(shell command -v python3.12))

.venv-triton: .venv-triton/.installed

.venv-triton/.installed: bench/requirements-triton.txt
	$(PYTHON312) -m venv .venv-triton
	.venv-triton/bin/pip install -q -r bench/requirements-triton.txt
	cp bench/requirements-triton.txt $@

## py-spy for bench/profile_path.py (where a request's time goes), kept out of the project's environments.
.venv-profile: .venv-profile/.installed

.venv-profile/.installed:
	$(PYTHON) -m venv .venv-profile
	.venv-profile/bin/pip install -q py-spy==0.4.3
	touch $@

.venv-ray/.installed: requirements/ray.lock pyproject.toml
	$(PYTHON) -m venv .venv-ray
	.venv-ray/bin/pip install -q -r requirements/ray.lock
	.venv-ray/bin/pip install -q --no-deps -e .
	touch $@

## Install the serving stack and start the service on the committed models.
serve: .venv-serve/.installed
	.venv-serve/bin/python -m service --host $(HOST) --port $(PORT)

## Install everything and run the test suite (offline, CPU only).
test: .venv/.installed
	.venv/bin/python -m pytest

## Ray Serve's loopback test (tests/ray/, a local Ray cluster of 2 CPUs) in its own environment.
test-ray: .venv-ray/.installed
	.venv-ray/bin/python -m pytest -m ray tests/ray

lint: .venv/.installed
	.venv/bin/ruff check digit_contract digit_frontend service training evaluation tests bench scripts
	.venv/bin/mypy digit_contract digit_frontend service training evaluation bench

## Re-render docs/report from the cards (MNIST_DIR adds the misclassified-digit grid).
report: .venv/.installed
	.venv/bin/python -m training report --store model_store --out docs/report

## Re-resolve the lock files from pyproject.toml (needs the package index).
lock: .venv/.installed
	.venv/bin/uv pip compile pyproject.toml --extra serve -o requirements/serve.lock $(LOCKFLAGS)
	.venv/bin/uv pip compile pyproject.toml --extra gpu -o requirements/gpu.lock $(LOCKFLAGS)
	.venv/bin/uv pip compile pyproject.toml --extra serve --extra train --extra dev --extra otel -o requirements/ci.lock $(LOCKFLAGS)
	grep -o '"pytest==[^"]*"' pyproject.toml | tr -d '"' | \
	  .venv/bin/uv pip compile pyproject.toml - --extra serve --extra ray -o requirements/ray.lock $(LOCKFLAGS)

LOCKFLAGS = -q --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header

BENCH_STORE ?= model_store

## Benchmark the service against its peers into bench/results/report.md (about 20 min, as `python -m bench --help` says; apt-get install -y wrk first).
bench: .venv/.installed .venv-serve/.installed
	.venv/bin/python -m bench --store $(BENCH_STORE)

## Every benchmark step in short runs (5-8 min) into bench/results/quick/: checks the harness, not a result.
bench-quick: .venv/.installed .venv-serve/.installed
	.venv/bin/python -m bench --store $(BENCH_STORE) --quick

clean:
	rm -rf .venv .venv-serve .venv-ray .venv-bench-bentoml .venv-triton .venv-profile .pytest_cache .mypy_cache .ruff_cache

## Audit the locked dependencies for known vulnerabilities (needs pip-audit's databases; see SECURITY.md).
audit: .venv/.installed
	.venv/bin/pip-audit --no-deps --disable-pip -r requirements/serve.lock
	.venv/bin/pip-audit --no-deps --disable-pip -r requirements/ci.lock
