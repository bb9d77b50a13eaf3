# spark-labs — two commands on a fresh machine:  `make demo`  and  `make test`.
# Everything installs itself into .venv; nothing needs to be installed by hand beforehand.

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
# tiny: CPU box with the embedded model; spark: GPU box (the NGC container brings its own torch).
PROFILE ?= tiny
# cluster: Ray, for `spark-labs grade --cluster` and its tests (CPU wheel from PyPI, ~12 s of the install).
EXTRAS  ?= $(if $(filter spark,$(PROFILE)),spark,tiny),lab,dev,cluster
STAMP   := $(VENV)/.installed-$(PROFILE)
PYTEST_ARGS ?=

export SPARK_LABS_PROFILE ?= $(PROFILE)
export HF_HUB_OFFLINE ?= $(if $(filter tiny,$(PROFILE)),1,0)
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install hooks browser demo test test-unit test-integration test-notebooks validate lab bench bench-overhead bench-accuracy bench-gateway bench-regimes bench-spec bench-grading clean help

help:
	@echo "make demo   - install, start llama.cpp + vLLM on the embedded model, compare them"
	@echo "make test   - install and run the whole test suite (what CI runs)"
	@echo "make hooks  - use the repository's git hooks (commit subject <= 72 characters)"
	@echo "make lab    - open JupyterLab on labs/, course map first (works as root too)"
	@echo "make bench  - harness overhead + accuracy vs vLLM (ratios measured side by side in one run)"
	@echo "make bench-spec - greedy vs prompt-lookup speculative decoding: alpha, tokens/step, speed-up vs formula"
	@echo "make bench-grading - time and peak memory of grading 10 lab-00 submissions with 2 workers"

install: $(STAMP)

# __init__.py holds the version (pyproject reads it): a bump must refresh the installed metadata too.
$(STAMP): pyproject.toml src/spark_labs/__init__.py
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(PIP) install --quiet --upgrade pip wheel && \
	{ [ "$(PROFILE)" != tiny ] || $(PIP) install --quiet torch==2.13.0; } && \
	$(PIP) install --quiet -e ".[$(EXTRAS)]" && \
	{ $(PIP) uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true; } && \
	{ [ "$(PROFILE)" != tiny ] || $(PY) -m spark_labs.models; } && \
	touch $@ && \
	echo "install took $$(( $$(date +%s) - start )) s"

demo: install
	$(PY) -m spark_labs.cli demo

# The browser tests drive the system Chromium (Playwright never downloads one). Installed here when missing
# and possible (root + apt-get, as on CI); otherwise those tests fail and name the command that fixes it.
browser:
	@[ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Chromium for the browser tests (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji; \
	  else \
	    echo "Chromium is missing and cannot be installed here: run 'sudo apt-get install -y chromium fonts-noto-color-emoji'"; \
	  fi; }

# Tests come in three tiers, one folder each (tests/conftest.py says what goes where):
#   tests/unit         starts no process (enforced): runs in parallel on every core (UNIT_ARGS)
#   tests/integration  real engines on the embedded model, gateway, Chromium, CLI, mkdocs: serial, since
#                      engines share the cores and start once per session
#   tests/notebooks    each lab run once (rehearsal + nbval comparison), answers, grading, JupyterLab: serial
# pytest's addopts prints the 25 slowest tests of every run.
UNIT_ARGS ?= -n auto
LAB       ?=

# Lint first: a finding fails the target before the (long) test run starts. Every tier runs even when an
# earlier one failed, so one CI run reports every failure.
test: install browser
	$(PY) -m ruff check src tests
	@start=$$(date +%s); rc=0; \
	$(PY) -m pytest tests/unit $(UNIT_ARGS) $(PYTEST_ARGS) || rc=$$?; \
	$(PY) -m pytest tests/integration tests/notebooks $(PYTEST_ARGS) || rc=$$?; \
	echo "tests took $$(( $$(date +%s) - start )) s"; exit $$rc

test-unit: install
	$(PY) -m pytest tests/unit $(UNIT_ARGS) $(PYTEST_ARGS)

test-integration: install browser
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# LAB=02: only lab 02's run, its comparison with the recording, untouched-learner run and answers.
test-notebooks: install browser
	$(PY) -m pytest tests/notebooks $(if $(LAB),--lab $(LAB)) $(PYTEST_ARGS)

# An instructor's headless check of every lab on this machine's profile (nbval; reports in results/validate).
validate: install
	$(PY) -m spark_labs.cli labs validate --out results/validate

# Performance claims live here, not in timed unit tests.
bench: bench-overhead bench-accuracy bench-gateway bench-regimes bench-spec

bench-overhead: install
	$(PY) -m spark_labs.cli bench overhead

bench-accuracy: install
	$(PY) -m spark_labs.cli bench accuracy --num-requests 32 --concurrency 4

bench-gateway: install
	$(PY) -m spark_labs.cli bench gateway --upstream calibration --concurrency 16
	$(PY) -m spark_labs.cli bench gateway --upstream vllm --concurrency 16 --num-requests 32 --rounds 2

bench-regimes: install
	$(PY) -m spark_labs.cli bench regimes --engine vllm --concurrency 4

# Goal: prompt lookup >= 1.5x decode speed-up on code-edit with identical greedy output; open chat, the early-exit
# draft and vLLM under load (concurrency 1/4/16) show where it loses.
bench-spec: install
	$(PY) -m spark_labs.cli bench spec --workloads code-edit,extraction,open-chat --k 1,2,4,8 --early-exit 24
	$(PY) -m spark_labs.cli bench spec --engine vllm --workloads code-edit,open-chat --concurrency 1,4,16

bench-grading: install
	$(PY) -m spark_labs.grading.cost --lab 00 --submissions 10 --workers 2

# Once per clone: use the repository's hooks (.githooks/commit-msg keeps commit subjects short).
hooks:
	git config core.hooksPath .githooks

lab: install
	$(PY) -m spark_labs.cli labs open

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
