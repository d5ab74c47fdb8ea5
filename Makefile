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
	$(BIN)/pip install -q pytest ruff import-linter spandrel onnx onnxscript onnxruntime xarray rioxarray  # test deps; import-linter checks the layers, spandrel HAT, onnx* segsr-export, xarray* the API
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	touch $@

DEMO_DATA := datasets/demo/meta/val.txt

$(DEMO_DATA): scripts/make_demo_data.py segsr/data/demo.py | $(STAMP)
	$(BIN)/python scripts/make_demo_data.py

# HAT and SeG-SR on the same backbone, data and schedule, each tested plain and self-ensembled ("+"),
# then one table: bicubic, both methods, and their paired difference with its 95 % interval.
# The two trainings run side by side, one thread each, which suits two cores; demo fails if either fails.
PLUS := val:self_ensemble=true
TRAIN_1T := OMP_NUM_THREADS=1 $(BIN)/python segsr/train.py -opt

demo: $(STAMP) $(DEMO_DATA)
	$(TRAIN_1T) options/train/demo_HAT_SRx4.yml & hat=$$!; \
	$(TRAIN_1T) options/train/demo_SEGSR_SRx4.yml; segsr=$$?; \
	wait $$hat && test $$segsr -eq 0
	$(BIN)/python segsr/test.py -opt options/test/demo_HAT_SRx4.yml
	$(BIN)/python segsr/test.py -opt options/test/demo_SEGSR_SRx4.yml
	$(BIN)/python segsr/test.py -opt options/test/demo_HAT_SRx4.yml --force_yml name=demo_HAT_SRx4_plus $(PLUS)
	$(BIN)/python segsr/test.py -opt options/test/demo_SEGSR_SRx4.yml --force_yml name=demo_SEGSR_SRx4_plus $(PLUS)
	$(BIN)/python scripts/demo_table.py --hat results/demo_HAT_SRx4 --segsr results/demo_SEGSR_SRx4 \
		--hat-plus results/demo_HAT_SRx4_plus --segsr-plus results/demo_SEGSR_SRx4_plus --out results/demo.md

# the layers declared in pyproject.toml are checked before the tests run
test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
