# `make demo` and `make test` create the virtual environment on first use and reuse it afterwards.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.segsr-installed
TORCH_PAIR := "torch>=2.14,<2.15" "torchvision>=0.29,<0.30"

.PHONY: install demo test lint

install: $(STAMP)

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel cython
	$(BIN)/pip install -q $(TORCH_PAIR)
	$(BIN)/pip install -q --no-build-isolation -r requirements.txt
	$(BIN)/pip install -q pytest ruff
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	touch $@

demo: $(STAMP)
	$(BIN)/python segsr/train.py -opt options/train/demo_HAT_SRx4.yml
	$(BIN)/python segsr/test.py -opt options/test/demo_HAT_SRx4.yml

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
