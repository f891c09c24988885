# Two commands matter: `make up` (the whole stack in this terminal) and `make test`.
# Both need only Python 3.11+ and make: `bootstrap` builds .venv first.

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-stamp
REQUIREMENTS := requirements/base.txt requirements/dev.txt
ARGS ?=
SUITE ?=
N ?=
MAIL_DIR ?= .data/mail
BENCH ?=
SIZE ?= full

.DEFAULT_GOAL := help
.PHONY: help bootstrap up test check mail lint format boundaries migrations-check compose-check typecheck openapi openapi-check lock clean bench bench-smoke bench-docs

help:
	@echo "make up         run the stack: http://localhost:$${GATEWAY_PORT:-8000} (Ctrl-C stops it)"
	@echo "make test       every suite against real servers (SUITE=\"gateway projects\", ARGS=\"-k health\")"
	@echo "make mail       the mail the running stack sent (make mail N=3 shows message 3)"
	@echo "make check      what CI runs before the tests: lint, boundaries, migrations, compose, OpenAPI, types"
	@echo "make bench      every benchmark, one table (BENCH=board for one, SIZE=smoke); make bench-smoke"
	@echo "make bench-docs docs/benchmarks.md's generated table from the last run (artifacts/bench.json)"
	@echo "make lint       ruff check and format check"
	@echo "make typecheck  mypy (django-stubs) on apps/common, apps/events and gateway"
	@echo "make openapi    regenerate docs/openapi.json, the merged API the gateway serves"
	@echo "make openapi-check  fail with a diff when the API differs from docs/openapi.json"
	@echo "make lock       re-pin requirements/*.txt from requirements/*.in"
	@echo "make bootstrap  create .venv and install the pinned requirements"
	@echo "make clean      remove .data/ (embedded servers' data), artifacts and caches"

$(VPY):
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when a requirement file changed since the last install.
$(STAMP): $(REQUIREMENTS) | $(VPY)
	$(VPY) -m pip install --quiet -r requirements/base.txt -r requirements/dev.txt
	touch $(STAMP)

bootstrap: $(STAMP)

up: $(STAMP)
	$(VPY) platform/devstack.py up

test: $(STAMP)
	$(VPY) platform/devstack.py test -- $(SUITE) $(if $(strip $(ARGS)),-- $(ARGS))

# What the stack's processes sent to the launcher's SMTP server ([process.mail]).
mail: $(STAMP)
	$(VPY) platform/mailcatcher.py $(if $(strip $(N)),show --dir $(MAIL_DIR) $(N),list --dir $(MAIL_DIR))

# bench/run.py: each benchmark in its own process; the run is saved to artifacts/bench.json.
bench: $(STAMP)
	$(VPY) bench/run.py --size $(SIZE) $(if $(strip $(BENCH)),--only $(BENCH))

# Every benchmark once at a tiny size: that each runs and gives its numbers (what CI calls).
bench-smoke: $(STAMP)
	$(VPY) bench/run.py --size smoke $(if $(strip $(BENCH)),--only $(BENCH)) --json artifacts/bench-smoke.json

bench-docs: $(STAMP)
	$(VPY) bench/run.py --docs-from artifacts/bench.json

lint: $(STAMP)
	$(VPY) -m ruff check .
	$(VPY) -m ruff format --check .

# Import boundaries (pyproject.toml [tool.importlinter]): services never import each other, and so on.
boundaries: $(STAMP)
	$(VENV)/bin/lint-imports

# Every model change has its migration. DB_POOL_MAX_SIZE=0: one quick refused connection, not a pool retrying.
SERVICES := $(filter-out base __init__,$(basename $(notdir $(wildcard config/settings/*.py))))
migrations-check: $(STAMP)
	@for service in $(SERVICES); do \
	  echo "makemigrations --check: $$service"; \
	  DJANGO_SETTINGS_MODULE=config.settings.$$service DB_POOL_MAX_SIZE=0 \
	    $(VPY) -W ignore manage.py makemigrations --check --dry-run >/dev/null || exit 1; \
	done

compose-check: $(STAMP)
	$(VPY) platform/compose.py --check

typecheck: $(STAMP)
	$(VPY) -m mypy

# The merged OpenAPI the gateway serves, against the committed docs/openapi.json: an API change is a deliberate commit.
openapi: $(STAMP)
	$(VPY) platform/openapi.py write

openapi-check: $(STAMP)
	$(VPY) platform/openapi.py check

# CI runs this before `make test` (.ci/run); .pre-commit-config.yaml runs the fast ones on commit.
check: lint boundaries migrations-check compose-check openapi-check typecheck

format: $(STAMP)
	$(VPY) -m ruff check --fix .
	$(VPY) -m ruff format .

lock: $(STAMP)
	$(VENV)/bin/uv pip compile -q requirements/base.in -o requirements/base.txt --python-version 3.11
	$(VENV)/bin/uv pip compile -q requirements/dev.in -o requirements/dev.txt --python-version 3.11

clean:
	rm -rf .data artifacts .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
