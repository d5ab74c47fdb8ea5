# `make demo` and `make test` create the virtual environment on first use and reuse it afterwards, with the exact
# versions of requirements.lock; `make lock` writes that file anew from requirements.txt and TEST_DEPS.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.segsr-installed
LOCK := requirements.lock
LOCK_VENV ?= .venv-lockgen
TORCH_PAIR := "torch>=2.14,<2.15" "torchvision>=0.29,<0.30"
# test deps: import-linter checks the layers, spandrel HAT, onnx* segsr-export, xarray* the API, jsonschema the
# generated option schema, huggingface_hub (the hub extra) loading by hf:// reference
TEST_DEPS := pytest ruff import-linter spandrel onnx onnxscript onnxruntime xarray rioxarray jsonschema huggingface_hub

.PHONY: install lock demo realworld sentinel2 test lint

install: $(STAMP)

# $(1): a venv's bin folder; $(2): pip options that pin versions (the lock as constraints), or none.
# torch comes first: basicsr builds against the torch already installed (no build isolation).
define pip_install
	$(1)/pip install -q $(2) -U pip setuptools wheel cython
	$(1)/pip install -q $(2) $(TORCH_PAIR)
	$(1)/pip install -q $(2) --no-build-isolation -r requirements.txt
	$(1)/pip install -q $(2) $(TEST_DEPS)
endef

$(STAMP): requirements.txt $(LOCK) setup.py
	$(PYTHON) -m venv --clear $(VENV)
	$(call pip_install,$(BIN),-c $(LOCK))
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	grep -v '^#' $(LOCK) > $(VENV)/lock.txt
	$(BIN)/pip freeze --all --exclude-editable | diff -u $(VENV)/lock.txt - || \
		{ echo "error: $(VENV) differs from $(LOCK) (diff above); run make lock after changing requirements"; exit 1; }
	touch $@

# A fresh venv from the loose requirements, frozen (minus the editable segsr) into $(LOCK); pip's cache is kept.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(call pip_install,$(LOCK_VENV)/bin,)
	{ echo "# Exact versions for make install (Python $$($(LOCK_VENV)/bin/python -c 'import platform; print(platform.python_version())'), Linux x86_64); written by make lock from requirements.txt and the Makefile's TEST_DEPS."; \
	  $(LOCK_VENV)/bin/pip freeze --all --exclude-editable; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)

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

# docs/realworld.md: the demo HAT trained on bicubic and on sensor-degraded LR (side by side, one thread each),
# both tested on bicubic LR and on held-out LR made by the sensor model, one table and one picture.
SENSOR_LR := datasets/demo/LR_x4_sensor/val
TEST_HAT := $(BIN)/python segsr/test.py -opt options/test/demo_HAT_SRx4.yml --force_yml val:save_img=true
realworld: $(STAMP) $(DEMO_DATA)
	$(TRAIN_1T) options/train/demo_HAT_SRx4.yml --force_yml name=rw_bicubic & bicubic=$$!; \
	$(TRAIN_1T) options/train/demo_HAT_SRx4_sensor.yml --force_yml name=rw_sensor; sensor=$$?; \
	wait $$bicubic && test $$sensor -eq 0
	test -d $(SENSOR_LR) || $(BIN)/python scripts/make_degraded_lr.py -opt options/train/demo_HAT_SRx4_sensor.yml \
		--hr datasets/demo/HR/val --out $(SENSOR_LR)
	for model in bicubic sensor; do \
		$(TEST_HAT) name=rw_$${model}_on_bicubic path:pretrain_network_g=experiments/rw_$$model/models/net_g_latest.safetensors && \
		$(TEST_HAT) name=rw_$${model}_on_sensor path:pretrain_network_g=experiments/rw_$$model/models/net_g_latest.safetensors \
			datasets:test_1:dataroot_lq=$(SENSOR_LR) || exit 1; \
	done
	$(BIN)/python scripts/realworld_table.py --bicubic-model results/rw_bicubic_on_bicubic results/rw_bicubic_on_sensor \
		--sensor-model results/rw_sensor_on_bicubic results/rw_sensor_on_sensor --out results/realworld.md
	$(BIN)/python scripts/realworld_crops.py --image camera_00 --hr datasets/demo/HR/val --lr $(SENSOR_LR) \
		--run "trained on bicubic=results/rw_bicubic_on_sensor" --run "trained on sensor=results/rw_sensor_on_sensor" \
		--out results/realworld_crops.png

# docs/sentinel2.md: the reference network (20 m bands to 10 m with the 10 m reference), unguided and guided by
# the SFEM, trained side by side by the Wald protocol on demo L2A products; their Wald table against bicubic, and
# all bands of the held-out product at 10 m (the bands to stack read from the guided model's card).
S2_DEMO := datasets/s2_demo
S2_BANDS := B05,B06,B07,B8A,B11,B12
sentinel2: $(STAMP)
	test -d $(S2_DEMO) || $(BIN)/python scripts/make_s2_wald_pairs.py --demo $(S2_DEMO)
	$(TRAIN_1T) options/train/demo_S2Reference_x2.yml & plain=$$!; \
	$(TRAIN_1T) options/train/demo_GuidedS2Reference_x2.yml; guided=$$?; \
	wait $$plain && test $$guided -eq 0
	$(BIN)/python segsr/test.py -opt options/test/demo_S2Reference_x2.yml
	$(BIN)/python segsr/test.py -opt options/test/demo_GuidedS2Reference_x2.yml
	$(BIN)/python scripts/wald_table.py results/demo_S2Reference_x2 results/demo_GuidedS2Reference_x2 \
		--bands $(S2_BANDS) --out results/sentinel2.md
	$(BIN)/segsr-infer --input $(S2_DEMO)/val --resample --output results/s2_demo_10m \
		--weights experiments/demo_GuidedS2Reference_x2/models/net_g_latest.safetensors

# the layers declared in pyproject.toml are checked before the tests run
test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
