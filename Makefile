# The two commands of the README's quick start. Each installs what it needs first, so both work on
# a fresh machine with Python 3.11 (torch==2.13.0 is a test-only dependency: the oracle we compare to).
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test install-test lint bench test-gpu bench-gpu

demo:  ## train LeNet-5 on the bundled digits (no download)
	$(PIP) -e ".[train]"
	$(PYTHON) -m chainrule train

install-test:
	$(PIP) -e ".[test]"

test: install-test
	$(PYTHON) -m ruff check src tests bench
	$(PYTHON) -m pytest -p no:cacheprovider

bench:
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTHON) -m bench

test-gpu:  ## the tests marked cuda (every op, LeNet-5 steps, compiled programs, kernels on a real GPU); needs CuPy and a GPU
	$(PYTHON) -m pytest -p no:cacheprovider -m cuda -rs tests/test_device.py tests/test_static_device.py

bench-gpu:  ## the GPU workloads against CUDA PyTorch (and hand-written CuPy floors)
	$(PYTHON) -m bench gpu
