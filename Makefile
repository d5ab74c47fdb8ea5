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
	$(BIN)/pip install -q pytest ruff spandrel onnx onnxscript onnxruntime  # test deps; spandrel checks HAT, onnx* segsr-export
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	touch $@

DEMO_DATA := datasets/demo/meta/val.txt

$(DEMO_DATA): scripts/make_demo_data.py segsr/data/demo.py | $(STAMP)
	$(BIN)/python scripts/make_demo_data.py

# The HAT baseline, then SeG-SR on the same data; each test prints its PSNR next to bicubic's.
demo: $(STAMP) $(DEMO_DATA)
	$(BIN)/python segsr/train.py -opt options/train/demo_HAT_SRx4.yml
	$(BIN)/python segsr/test.py -opt options/test/demo_HAT_SRx4.yml
	$(BIN)/python segsr/train.py -opt options/train/demo_SEGSR_SRx4.yml
	$(BIN)/python segsr/test.py -opt options/test/demo_SEGSR_SRx4.yml

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
