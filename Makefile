# The course's two commands: `make lab` and `make test`. Everything else is for instructors.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The published solutions are a real run: the cpu profile on all of MNIST and Imagenette. Point the course at
# your copies (a folder with MNIST's four files; an Imagenette folder in ImageNet's layout); by default the
# copies in ../shared/data are used when that folder exists.
PROFILE ?= cpu
SHARED_DATA ?= ../shared/data
MNIST ?= $(wildcard $(SHARED_DATA)/mnist-full)
IMAGENETTE ?= $(wildcard $(SHARED_DATA)/imagenette2-128)
DATA_ENV = $(if $(MNIST),COURSE_MNIST=$(abspath $(MNIST)),) $(if $(IMAGENETTE),COURSE_IMAGENETTE=$(abspath $(IMAGENETTE)),)

.PHONY: setup lab lint test test-quick student solutions check grade site lock release benchmarks references clean

# Every package at the version in requirements.lock (made by `make lock` from pyproject.toml and the
# torch pins in constraints.txt), then the course itself without resolving anything more. Re-installs
# only when the lock, the package description or the JupyterLab settings change (a second `make` is
# instant). The settings override stops JupyterLab 4's "notified about official Jupyter news?" pop-up,
# which --LabApp.news_url=None alone does not.
$(STAMP): requirements.lock pyproject.toml jupyter/overrides.json
	@if ! $(BIN)/python -c "import sys" >/dev/null 2>&1; then \
		echo "Creating $(VENV) with $(PYTHON)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $(STAMP)

setup: $(STAMP)

# JupyterLab refuses to run as root (containers often do) unless told it may.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --LabApp.default_url=/lab/tree/00_welcome.ipynb \
		--LabApp.news_url=None $(ALLOW_ROOT)

# Unit tests, instructor checks, every lesson under nbval (smoke profile), browser tests: on every core
# (pytest-xdist; JOBS=1 for one process), one torch thread each. A lesson's cells stay together on one
# worker, and so do a module's tests, so that its module-scoped fixtures (a JupyterLab server, a Colab
# environment) are made once (--dist loadscope; loadgroup ignores its marks under pytest 9.2).
JOBS  ?= auto
PYTEST = COURSE_PROFILE=smoke MPLBACKEND=agg OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider \
	$(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist loadscope)

# The linter (pyproject.toml's [tool.ruff]: pyflakes, syntax errors, bugbear, lines of at most 120 characters).
lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m course_lib.instructor check
	$(PYTEST) tests solutions --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg $(PYTEST_ARGS)
	@command -v chromium >/dev/null || echo "NOTE: Chromium is missing: the browser tests were SKIPPED (apt-get install -y chromium)."
	@command -v node >/dev/null || echo "NOTE: Node.js is missing: the course site was not built and its tests were SKIPPED."
	@command -v bwrap >/dev/null || echo "NOTE: bubblewrap is missing: the grading tests were SKIPPED (apt-get install -y bubblewrap)."

# The library's unit tests while you work: no lesson runs, no browser, no torchrun, no Colab simulation.
test-quick: setup
	$(PYTEST) tests -m "not slow and not browser"

student: setup
	$(BIN)/python -m course_lib.instructor student

# Runs only the lessons whose source or library changed since their solution was made; ALL=1 runs all;
# LESSONS="02_lenet1_digits 03_training_dynamics" runs those. Outside smoke a lesson without real data fails.
solutions: setup
	$(DATA_ENV) $(BIN)/python -m course_lib.instructor solutions --profile $(PROFILE) $(if $(ALL),--all,) $(LESSONS)

check: setup
	$(BIN)/python -m course_lib.instructor check

# Grade a folder of learners' notebooks into SUBMISSIONS/grades.csv (course_lib/instructor/grade.py).
grade: setup
	@test -n "$(SUBMISSIONS)" || (echo "usage: make grade SUBMISSIONS=DIR"; exit 2)
	$(BIN)/python -m course_lib.instructor grade $(SUBMISSIONS)

# Re-lock every dependency (pyproject.toml's, extras included, with constraints.txt's torch pins) for
# Python 3.11 on every platform, then write environment.yml from the lock. Needs the package registry.
lock: setup
	$(BIN)/uv pip compile --quiet pyproject.toml --universal --python-version 3.11 --extra lab --extra instructor \
		--extra test -c constraints.txt --custom-compile-command "make lock" -o requirements.lock
	$(BIN)/python -m course_lib.instructor lock

# The course website from the README and the executed solutions (Jupyter Book 2; needs Node.js),
# into build/site/html: open build/site/html/index.html, or publish that folder as it is.
site: setup
	$(BIN)/python -m course_lib.instructor site build

# Move the course to a new release: pyproject's version, then every Colab badge and install line
# (README, notebooks/, student/, solutions/). Then tag the commit: git tag $(TAG).
release: setup
	@test -n "$(TAG)" || (echo "usage: make release TAG=vX.Y.Z [REPO=owner/name]"; exit 2)
	$(BIN)/python -m course_lib.instructor release $(TAG) $(if $(REPO),--repo $(REPO),)
	$(BIN)/python -m course_lib.instructor check

# The CPU benchmarks; on a GPU machine also run benchmarks/alexnet_imagenette.py.
benchmarks: setup
	for b in lenet1_mnist fit_throughput fit_defaults widget_latency alexnet_pipeline; do \
		$(BIN)/python benchmarks/$$b.py || exit 1; done
	$(DATA_ENV) $(BIN)/python benchmarks/seed_claims.py --profile cpu --seeds 3

# The trained reference networks shipped in course_lib/reference_nets/ (see course_lib/references.py;
# AlexNet needs Imagenette: downloaded, or a folder in $$COURSE_IMAGENETTE). The AlexNets follow
# course_lib/instructor/alexnet_recipe.py (48 epochs on a 2-core CPU with native bf16, validation included:
# about an hour for two streams on --threads 2, two hours for one stream on one core beside other work);
# an interrupted build resumes from its last epoch.
references: setup
	$(DATA_ENV) $(BIN)/python -m course_lib.instructor references build lenet1-mnist
	$(DATA_ENV) $(BIN)/python -m course_lib.instructor references build alexnet-imagenette
	$(DATA_ENV) $(BIN)/python -m course_lib.instructor references build alexnet-imagenette-one-stream

clean:
	rm -rf $(VENV) test-artifacts
