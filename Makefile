# sslbench — `make setup` then `make test`; see README.md.
PY      := .venv/bin/python
PYTEST  := $(PY) -m pytest
PRESET  ?= shapes64
N       ?= 20000
SEED    ?= 0
DATA    ?= data

.PHONY: setup test test-slow bench data sheet clean

setup:                 ## create .venv and install everything (Detectron2, mmcv with CPU ops, mmseg)
	bash install/setup.sh

test:                  ## the default suite (no `slow` tests); fails if no test ran (pytest exit 5)
	$(PYTEST) -m "not slow" -q

test-slow:             ## the heavy checks only
	$(PYTEST) -m slow -q

bench:                 ## timings: synthetic generation and data loading -> bench/out/*.json
	$(PY) bench/bench_generate.py --json bench/out/generate.json
	$(PY) bench/bench_loader.py --json bench/out/loader.json

data:                  ## generate a dataset: make data PRESET=shapes64 N=20000 SEED=0
	$(PY) -m synthetic.generate --preset $(PRESET) --n $(N) --seed $(SEED) --out $(DATA)/$(PRESET)

sheet:                 ## contact sheet of a generated dataset: make sheet PRESET=shapes64
	$(PY) -m synthetic.show $(DATA)/$(PRESET) --out $(DATA)/$(PRESET)-sheet.png

clean:
	rm -rf .pytest_cache bench/out
