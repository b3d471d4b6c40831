# courseplatform: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Test services (real PostgreSQL and Redis). Override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/courseplatform
TEST_BROKER_URL ?= redis://127.0.0.1:6379/0
# e.g. PYTEST_ARGS="tests/courses -x" or PYTEST_ARGS="-m 'not e2e'"
PYTEST_ARGS ?=

.PHONY: run test test-random test-repeat install system-deps services migrate demo sync superuser clean bench bench-grading bench-submissions bench-quiz bench-live compose-check compose-smoke bench-chaos bench-gpu-queue gpu-check

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "courseplatform needs Python 3.11 or newer (found: $$($(PYTHON) --version 2>&1)); set PYTHON=python3.11" >&2; exit 1; }
	@test -x $(PY) || { echo "==> Creating the virtual environment $(VENV) ($$($(PYTHON) --version 2>&1))"; $(PYTHON) -m venv $(VENV); }
	@echo "==> Upgrading pip"
	$(PY) -m pip install --quiet --upgrade pip
	@echo "==> Installing the Python packages of requirements.txt (torch among them: several minutes on a fresh machine; pip lists each package as it is collected)"
	set -o pipefail; $(PY) -m pip install --progress-bar off -r requirements.txt | { grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed)' || true; }
	@echo "==> Installing courseplatform itself (editable)"
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)
	@echo "==> Python environment ready"

install: $(STAMP)

# npm packages of the browser side (axe-core for the accessibility tests; the editor bundle's build,
# whose output is committed): installed exactly from the lock file.
FRONTEND_STAMP := frontend/node_modules/.installed
$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	npm ci --prefix frontend --no-audit --no-fund --loglevel=error
	touch $(FRONTEND_STAMP)

# Embedded mode: SQLite and Celery's file-system broker under var/, nothing else to install.
# A development server: it listens on 127.0.0.1 unless asked (`make run HOST=0.0.0.0 PORT=8080`).
HOST ?= 127.0.0.1
PORT ?= 8000
run: install migrate demo
	@echo "==> Starting the web server, a Celery worker and Celery beat (the logins follow once they run)"
	HOST=$(HOST) PORT=$(PORT) DEBUG=$${DEBUG:-1} $(PY) -m courseplatform.devserver

migrate: install
	@echo "==> Creating/updating the database tables (manage.py migrate)"
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput

# `make run` prints the logins once the site is up; `make demo` on its own prints them here.
demo: install
	@echo "==> Loading the demo course (grading its demo submissions with the real engine takes a minute the first time)"
	DEBUG=$${DEBUG:-1} $(PY) manage.py load_demo $(if $(filter run,$(MAKECMDGOALS)),,--logins)

sync: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py sync_course assignments/

superuser: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py createsuperuser

system-deps:
	bash scripts/system_deps.sh

services: system-deps
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) bash scripts/services.sh

# The import contracts first (pyproject.toml [tool.importlinter]: a broken one fails the run), then the
# whole suite against real PostgreSQL and Redis; pytest's exit status is make's.
test: install services $(FRONTEND_STAMP)
	$(VENV)/bin/lint-imports
	DEBUG=1 DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
		HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
		$(PY) -m pytest $(PYTEST_ARGS)

# The flake hunt (see README "Tests"): the suite in a random order (the seed is printed; rerun one
# order with PYTEST_ARGS="-p random_order --random-order-seed=N"), and N runs in a row, optionally
# while a busy loop keeps every core loaded.
test-random:
	$(MAKE) test PYTEST_ARGS="--random-order $(PYTEST_ARGS)"

RUNS ?= 5
test-repeat: install services
	bash scripts/test_repeat.sh $(RUNS)

# Benchmarks print a ratio or figures against a baseline measured in the same run.
BENCH_ENV = DEBUG=1 DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) HF_HUB_OFFLINE=1
bench: bench-grading bench-submissions bench-quiz

bench-grading: install
	$(BENCH_ENV) $(PY) bench/grading_latency.py

bench-submissions: install services
	$(BENCH_ENV) $(PY) bench/submission_load.py

bench-quiz: install services
	$(BENCH_ENV) $(PY) bench/quiz_load.py

# The live quiz (bench/live_quiz.py): LIVE_ARGS="--timed-students 300" runs the timed quiz beside it.
LIVE_ARGS ?=
bench-live: install services
	$(BENCH_ENV) $(PY) bench/live_quiz.py $(LIVE_ARGS)

# Faults during a surge (bench/chaos.py): CHAOS_ARGS="--broker rabbitmq" or "--netns" (needs root).
CHAOS_ARGS ?=
bench-chaos: install services
	$(BENCH_ENV) $(PY) bench/chaos.py $(CHAOS_ARGS)

# Deadline simulation of the GPU queue on CPU: fair share on/off and ETA accuracy.
bench-gpu-queue: install services
	$(BENCH_ENV) $(PY) bench/gpu_queue.py

# Every pack with queue = "gpu" graded on this machine's GPU with its real settings (CPU: small mode).
gpu-check: install
	bash scripts/gpu_check.sh

# The production compose file, checked without a Docker engine (Debian's docker-compose + the schema).
compose-check: install
	$(PY) -m pytest -q tests/ops/test_compose.py

# The containers end to end (scripts/compose_smoke.sh; not part of `make test`: a cold image build takes
# minutes): engine, image from a local base, web + CPU worker + beat against the host's PostgreSQL and
# Redis, a correct and a hostile file graded by the sandbox in the worker container, the worker killed
# mid-grade and the submission graded after its restart. Needs root (or a running Docker engine).
compose-smoke:
	bash scripts/compose_smoke.sh

clean:
	rm -rf $(VENV) var
