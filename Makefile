# Conventional targets. `make test` is the one command that runs every test (unit + real containers).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
COMPOSE ?= docker compose
STACK ?= $(COMPOSE) -f compose.yaml -f compose.stack.yaml

IMAGE ?= unstuck

.PHONY: up down logs shell status build image watch stack stack-down test test-unit test-other-python test-realworld bench clean

up: ## serve ./app on http://127.0.0.1:8000 with reload (foreground)
	$(COMPOSE) up --build

down: ## stop and remove the containers and network
	$(COMPOSE) down

logs: ## follow the server's logs
	$(COMPOSE) logs -f app

shell: ## a shell in the running app container
	$(COMPOSE) exec app bash

status: ## the reload server's state
	$(COMPOSE) exec app unstuck status

build: ## build the image
	$(COMPOSE) build

image: ## the image for any project, tagged $(IMAGE):py3.X and $(IMAGE):latest (BASE_IMAGE=... to choose the Python)
	docker build --target unstuck $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) -t $(IMAGE):latest .
	version=$$(docker run --rm --entrypoint python $(IMAGE):latest -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
	  && docker tag $(IMAGE):latest $(IMAGE):py$$version && echo "built $(IMAGE):py$$version"

watch: ## no bind mount: files arrive by Compose Watch sync (remote engines, slow shares)
	$(COMPOSE) -f compose.yaml -f compose.sync.yaml watch

stack: ## the app with Postgres, Redis and the job worker (compose.stack.yaml), foreground
	$(STACK) up --build

stack-down: ## stop and remove the stack's containers and network (its data volumes are kept)
	$(STACK) down

$(VENV)/.installed: tests/requirements.txt tests/requirements-fastapi-0.115.txt entrypoint/requirements.txt app/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r tests/requirements.txt
	$(VENV)/bin/pip install --quiet --upgrade --target $(VENV)/fastapi-0.115 -r tests/requirements-fastapi-0.115.txt
	touch $@

test: $(VENV)/.installed ## every test: unit tests and real-container integration tests
	$(VENV)/bin/pytest tests

# What depends on the Python version most: the reloader (fork, warm process, hand-over), the fault matrix and
# the project shapes. CI runs them on the second tested Python (README, "Supported Pythons").
OTHER_PYTHON_TESTS ?= tests/integration/test_reload.py tests/integration/test_faults.py tests/integration/test_shapes.py

test-other-python: $(VENV)/.installed ## the reloader, fault and shape tests on BASE_IMAGE=... (e.g. unstuck-local-base:trixie)
	@test -n "$(BASE_IMAGE)" || { echo "set BASE_IMAGE, e.g. make test-other-python BASE_IMAGE=unstuck-local-base:trixie"; exit 2; }
	BASE_IMAGE=$(BASE_IMAGE) $(VENV)/bin/pytest $(OTHER_PYTHON_TESTS)

test-unit: $(VENV)/.installed ## the fast tests that need no Docker
	$(VENV)/bin/pytest tests/unit tests/host

# Large public projects (tests/realworld_projects.py), each served and compared with a fresh interpreter across a
# scripted sequence of saves; not part of `make test` (it installs each project's dependencies: minutes).
# REALWORLD_SRC=dir takes the checkouts from dir/<name> instead of cloning them from GitHub.
test-realworld: $(VENV)/.installed ## every answer on three large public projects compared with a fresh interpreter's
	$(VENV)/bin/pytest tests/realworld $(REALWORLD_ARGS)

bench: $(VENV)/.installed ## unstuck vs plain uvicorn --reload, side by side (takes a few minutes)
	$(VENV)/bin/python tests/bench/bench.py $(BENCH_ARGS)

clean: ## remove containers, the image built by compose, the stack's data volumes and the test virtualenv
	$(STACK) down --rmi local --volumes --remove-orphans
	rm -rf $(VENV) .pytest_cache
