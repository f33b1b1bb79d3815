# Hyoka: the verbs a newcomer needs. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export SITE_URL ?= http://127.0.0.1:$(PORT)

.PHONY: demo test lint fmt types bench messages system-deps clean

$(VENV)/.runtime: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## demo: install, migrate, load the reference study, print the logins and links, run its
## fieldwork (senders, contacts, invitations as files, the letters PDF), serve
demo: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo
	$(BIN)/python manage.py demo_fieldwork
	@echo "  Serving on $(SITE_URL) (Ctrl-C stops it)"
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## system-deps: Debian packages the tests need (headless Chromium for the browser test)
system-deps:
	@bash scripts/system-deps.sh

## test: install dev dependencies and run the whole suite in parallel, one worker per
## core and one more (tests/conftest.py; TEST_WORKERS=0: in one process)
TEST_WORKERS ?= auto
# Compiled bytecode is cached (Python's default) even where the environment turns that
# off: otherwise every worker, and every server or Celery worker a test starts, compiles
# the project again and pytest rewrites every test module's asserts again (7 s of CPU per
# worker here). __pycache__/ is ignored by git.
test: export PYTHONDONTWRITEBYTECODE =
test: $(VENV)/.dev system-deps
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

types: $(VENV)/.dev
	$(BIN)/mypy

## bench: benchmarks (PostgreSQL on 127.0.0.1 needed), never part of the tests
bench: $(VENV)/.dev
	$(BIN)/python bench/submit.py
	$(BIN)/python bench/score.py
	$(BIN)/python bench/admin.py
	$(BIN)/python bench/report.py
	$(BIN)/python bench/letters.py
	$(BIN)/python bench/fieldwork.py
	$(BIN)/python bench/fieldwork.py --kill --participants 20000

## messages: refresh and compile the Japanese translations
messages: $(VENV)/.dev
	$(BIN)/python manage.py makemessages -l ja --no-obsolete --ignore=.venv --ignore=bench --ignore=tests
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) hyoka.sqlite3 staticfiles .pytest_cache .mypy_cache .ruff_cache
