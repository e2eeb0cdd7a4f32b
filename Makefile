# sslbench — `make setup` then `make test`; see README.md.
PY       := .venv/bin/python
PYTEST   := $(PY) -m pytest
# synthetic data: make data DATASET=shapes64-heldout N=20000 SEED=0 (held-out objects in its test split)
DATA_DIR ?= data
DATASET  ?= shapes64-heldout
N        ?= 20000
SEED     ?= 0
# pretraining: make pretrain METHOD=byol AUG=default DATA=data/shapes64-heldout PRESET=cpu ARGS="--optim.lr=0.1"
METHOD   ?= simclr
AUG      ?=
PRESET   ?= cpu
DATA     ?= $(DATA_DIR)/shapes64-heldout
ARGS     ?=
# saliency cache: make saliency DATA=data/shapes64-heldout ALGO=rc
ALGO     ?= rc
# reports: make report DB=results/results.sqlite; make reproduce PAPER=utility SCALE=cpu
DB       ?= results/results.sqlite
PAPER    ?= utility
SCALE    ?= cpu

.PHONY: setup test test-slow bench bench-suite equivalence learning data sheet pretrain saliency report reproduce clean

setup:                 ## create .venv and install everything (Detectron2, mmcv with CPU ops, mmseg)
	bash install/setup.sh

test:                  ## the default suite (no `slow` tests); fails if no test ran (pytest exit 5)
	$(PYTEST) -m "not slow" -q

test-slow:             ## the heavy checks only
	$(PYTEST) -m slow -q

bench:                 ## timings -> bench/out/*.json (figures in bench/RESULTS.md)
	$(PY) bench/bench_generate.py --json bench/out/generate.json
	$(PY) bench/bench_loader.py --json bench/out/loader.json
	$(PY) bench/bench_augment.py --json bench/out/augment.json
	$(PY) bench/bench_pretrain.py --json bench/out/pretrain.json
	$(PY) bench/bench_saliency.py --json bench/out/saliency.json
	$(PY) bench/bench_linear.py --json bench/out/linear.json

bench-suite:           ## evaluation-suite wall time on CKPT=runs/.../ckpt.pt (cold vs warm feature cache)
	$(PY) bench/bench_suite.py $(CKPT) --data $(DATA) --json bench/out/suite.json

equivalence:           ## behaviour fingerprint (weights of every method / policy, suite numbers) vs REF=bench/out/equivalence.json
	$(PY) bench/equivalence.py $(if $(REF),--compare $(REF),--json bench/out/equivalence.json)

learning:              ## the learning check: cpu-preset SimCLR / MoCo v2 / BYOL vs random and supervised, linear probe
	bash bench/learning.sh $(DATA) random supervised simclr mocov2 byol

data:                  ## generate a synthetic dataset into $(DATA_DIR)/$(DATASET)
	$(PY) -m synthetic.generate --preset $(DATASET) --n $(N) --seed $(SEED) --out $(DATA_DIR)/$(DATASET)

sheet:                 ## contact sheet of $(DATA_DIR)/$(DATASET)
	$(PY) -m synthetic.show $(DATA_DIR)/$(DATASET) --out $(DATA_DIR)/$(DATASET)-sheet.png

# policies that read HC / RC saliency from the cache: `make pretrain` fills it first with 2 worker processes.
# sgd / sgd-only cut the object with SaliencyCut by default (--aug_cfg.threshold=cut), cached as ALGO-cut;
# with ARGS="--aug_cfg.threshold=adaptive" (or otsu, a number) they read the maps: SGD_CACHE=$(ALGO).
# ALGO must name the policy's algorithm: rc by default, ALGO=hc with ARGS=--aug_cfg.algo=hc.
SALIENCY_AUGS := sgd sgd-only
SGD_CACHE     ?= $(ALGO)-cut

pretrain:              ## self-supervised pretraining -> runs/<run_id>/ckpt.pt (saliency policies: cache filled first)
	$(if $(filter $(AUG),$(SALIENCY_AUGS)),$(PY) -m pretrain.saliency precompute --data $(DATA) --algo $(SGD_CACHE) --workers 2 --quiet)
	$(PY) -m pretrain --method $(METHOD) $(if $(AUG),--aug $(AUG)) --preset $(PRESET) --data $(DATA) $(ARGS)

saliency:              ## precompute the saliency cache of $(DATA) with $(ALGO) (hc | rc | hc-cut | rc-cut)
	$(PY) -m pretrain.saliency precompute --data $(DATA) --algo $(ALGO) --workers 2

report:                ## the results store's report -> reports/out; each committed cpu reproduction's -> reports/out/reproductions/<paper>
	@if [ -f $(DB) ] || ! ls bench/reproductions/*-cpu.sqlite >/dev/null 2>&1; then \
	  $(PY) -m reports build --db $(DB) --out reports/out || exit 1; fi
	@for db in bench/reproductions/*-cpu.sqlite; do [ -f "$$db" ] || continue; \
	  paper=$$(basename $$db -cpu.sqlite); out=reports/out/reproductions/$$paper; \
	  $(PY) -m reports build --db $$db --out $$out && \
	  $(PY) -m reports compare --paper $$paper --db $$db --out $$out || exit 1; done

reproduce:             ## a paper end to end (PAPER=saliency-aug|saliency-masking|invariance|slotcon|utility, SCALE=cpu|full, TRANSFER=1: cpu transfers too)
	$(PY) -m reports reproduce --paper $(PAPER) --scale $(SCALE) $(if $(TRANSFER),--transfer)

clean:
	rm -rf .pytest_cache bench/out
