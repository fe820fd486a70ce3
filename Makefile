# tikting — the two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo serve test test-sqlite test-postgres test-browser lint fmt typecheck bench clean pg-up system-deps

# Build the environment only: .venv with pinned packages, the `tikting` CLI, front-end assets.
# What the operating system lacks (npm, a C compiler) is installed first by scripts/system-deps.
install: $(BIN)/tikting static/vendor/.stamp

$(BIN)/tikting: pyproject.toml requirements.txt requirements-dev.txt constraints.txt
	command -v cc >/dev/null 2>&1 || scripts/system-deps demo  # gunicorn-h1c is compiled
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(BIN)/tikting

static/vendor/.stamp: package.json package-lock.json
	command -v npm >/dev/null 2>&1 || scripts/system-deps demo
	npm ci --no-audit --no-fund --silent
	mkdir -p static/vendor
	cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.umd.min.js
	cp node_modules/sortablejs/Sortable.min.js static/vendor/Sortable.min.js
	cp node_modules/bootstrap/dist/css/bootstrap.min.css static/vendor/bootstrap.min.css
	cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js static/vendor/bootstrap.bundle.min.js
	mkdir -p static/vendor/bootstrap-icons
	cp -r node_modules/bootstrap-icons/font/bootstrap-icons.min.css node_modules/bootstrap-icons/font/fonts static/vendor/bootstrap-icons/
	touch $@

# Run the product on the embedded default (SQLite): migrate, load the demo organisation, serve,
# with a worker beside the web server (the schedule: detectors, SLA verdicts, housekeeping; jobs at
# /jobs/). Ctrl-C stops both: the worker is sent SIGTERM and finishes its current job first.
# The demo's e-mails (notifications, digests) are printed by the worker, never sent.
demo: export TIKTING_EMAIL_BACKEND ?= django.core.mail.backends.console.EmailBackend
demo: install
	$(BIN)/tikting migrate --noinput
	$(BIN)/tikting demo
	@echo ""
	@echo "  tikting is running on http://127.0.0.1:8000  (Ctrl-C to stop)"
	@echo "  demo logins (password: demo): manager, owner, owner2, contributor, viewer, admin"
	@echo "  a worker runs the jobs and the schedule beside it: see /jobs/ (signed in as manager)"
	@echo ""
	@$(BIN)/tikting worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/tikting runserver 127.0.0.1:8000

serve: install
	$(BIN)/tikting runserver 127.0.0.1:8000

# Every test, on SQLite and on PostgreSQL. On a bare machine scripts/system-deps first installs
# Debian's chromium, nmap and PostgreSQL where missing, and starts PostgreSQL.
test: system-deps install
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite:
	DATABASE_URL=sqlite:///:memory: $(BIN)/pytest -n 2 -q

test-postgres: pg-up
	DATABASE_URL=$(PG_URL) $(BIN)/pytest -n 2 -q

pg-up: system-deps

system-deps:
	@scripts/system-deps test

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	DATABASE_URL=sqlite:///:memory: $(BIN)/tikting check --fail-level WARNING
	DATABASE_URL=sqlite:///:memory: $(BIN)/tikting makemigrations --check --dry-run

fmt:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck:
	$(BIN)/mypy tikting

bench: install
	$(BIN)/python bench/register_pages.py
	$(BIN)/python bench/import_register.py
	$(BIN)/python bench/import_bpic2014.py || echo "(BPIC 2014 data absent or import over target)"
	$(BIN)/python bench/metrics_1m.py

clean:
	rm -rf $(VENV) node_modules static/vendor staticfiles var
