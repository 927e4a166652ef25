# Two entry points that do their own set-up on a fresh machine:
#   make bench   the main job: the default benchmark for this machine
#   make test    the test suite (CPU; Triton kernels run through the interpreter)
#
# The environment is a virtual env in .venv. torch is pinned to 2.13.0, the CPU build that these
# machines install from a local file; an unpinned torch would pull gigabytes of CUDA packages.
# Where torch is already importable (a GPU machine with its own torch), that one is used.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.fastrnn-installed

.PHONY: setup test test-all bench lint asan clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[triton,bench,dev]"
	touch $(STAMP)

# TRITON_INTERPRET must be set before Python starts: it is read when @triton.jit runs.
test: setup
	TRITON_INTERPRET=1 $(PY) -m pytest -q -m "not slow"

test-all: setup
	TRITON_INTERPRET=1 $(PY) -m pytest -q

bench: setup
	$(PY) -m fastrnn bench

# The CPU path's C file (fastrnn/cpu/fused_steps.c) built with AddressSanitizer, under its tests: any
# read or write out of a tensor's bounds aborts with a report. Tests that raise through libtorch's
# C++ exceptions are left out (ASan's __cxa_throw interceptor fails inside libtorch_python).
ASAN_TESTS := tests/test_cpu_fused.py tests/test_cpu_backend.py tests/test_cpu_inference.py \
              tests/test_nonfinite.py
ASAN_SKIP := not cc_may and not compiler and not switched and not built_once and not double_backward \
	and not changing_an_output and not refused
asan: setup
	LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
	CC="gcc -fsanitize=address -fno-omit-frame-pointer" FASTRNN_CACHE_DIR=.asan-cache \
	$(PY) -m pytest -q -p no:cacheprovider $(ASAN_TESTS) -k "$(ASAN_SKIP)"

lint: setup
	$(PY) -m ruff check fastrnn tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .asan-cache
