# Everything a fresh machine with Python 3.11 and git needs: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTOS := $(sort $(shell find protos -name '*.proto'))
export PATH := $(BIN):$(PATH)
export CW_HOME ?= $(CURDIR)/.cw

.PHONY: install browser agent-clis sandbox run demo proto proto-check api-baseline lint test bench clean claude-cli

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The web tests' browser: Debian's chromium, driven by Playwright through its path (Playwright's own
# browser download is not reachable from CI). Installed here when missing (CI runs as root).
browser:
	@command -v chromium > /dev/null || command -v chromium-browser > /dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)
# The real agent CLIs the tests run (against fake model APIs on 127.0.0.1), pinned, from the npm
# registry, cached in the checkout (.cache/agent-clis/, not committed).
CODEX_VERSION := 0.171.0
GEMINI_VERSION := 0.61.0
AGENT_CLIS := .cache/agent-clis
CODEX := $(AGENT_CLIS)/codex/node_modules/.bin/codex
GEMINI := $(AGENT_CLIS)/gemini-$(GEMINI_VERSION)/node_modules/.bin/gemini
export CW_TEST_CODEX := $(CURDIR)/$(CODEX)
export CW_TEST_GEMINI := $(CURDIR)/$(GEMINI)

# OpenCode: its package's postinstall puts the native binary (an optional dependency) in its
# place; its --version runs in a home of its own (it writes there).
OPENCODE_VERSION := 1.18.33
OPENCODE := $(AGENT_CLIS)/opencode/node_modules/.bin/opencode
export CW_TEST_OPENCODE := $(CURDIR)/$(OPENCODE)

agent-clis: $(CODEX) $(GEMINI) $(OPENCODE)

$(CODEX):
	command -v npm > /dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	npm install --no-audit --no-fund --silent --prefix $(AGENT_CLIS)/codex @openai/codex@$(CODEX_VERSION)
	$(CODEX) --version | grep -q '$(CODEX_VERSION)' || (echo "codex is not $(CODEX_VERSION)" && exit 1)

# Gemini CLI (JavaScript, node >= 20); its directory is named by its version, so a new pin installs.
$(GEMINI):
	command -v npm > /dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	npm install --no-audit --no-fund --silent --prefix $(AGENT_CLIS)/gemini-$(GEMINI_VERSION) \
		@google/gemini-cli@$(GEMINI_VERSION)
	$(GEMINI) --version | grep -q '$(GEMINI_VERSION)' || (echo "gemini is not $(GEMINI_VERSION)" && exit 1)

$(OPENCODE):
	command -v npm > /dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	npm install --no-audit --no-fund --silent --prefix $(AGENT_CLIS)/opencode opencode-ai@$(OPENCODE_VERSION)
	HOME=$(AGENT_CLIS)/opencode/home $(OPENCODE) --version | grep -qx '$(OPENCODE_VERSION)' || \
		(echo "opencode is not $(OPENCODE_VERSION)" && exit 1)
# bubblewrap, which every agent runs in (README, "What an agent can and cannot do"). Installed
# with apt-get when missing and run as root (as CI does); anyone else is told how.
sandbox:
	@command -v bwrap > /dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
			apt-get install -y -qq bubblewrap > /dev/null || \
			{ apt-get update -qq && apt-get install -y -qq bubblewrap > /dev/null; }; \
		else \
			echo "bubblewrap (bwrap) is missing: install it (sudo apt-get install bubblewrap)," \
				"or run agents in a sandbox of yours: make run ARGS=--agents-in-sandbox"; exit 1; \
		fi; }

# Regenerates the committed Python code (messages, stubs, typed .pyi) from protos/, and the SDK's
# table of unary methods (clients/sdk/methods.py).
proto: $(STAMP)
	rm -rf gen/cw
	$(call generate,gen)
	$(BIN)/python -m clients.sdk.methods

define generate
	mkdir -p $(1)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=$(1) --grpc_python_out=$(1) \
		--mypy_out=quiet:$(1) --mypy_grpc_out=quiet:$(1) $(PROTOS)
	find $(1)/cw -type d -exec touch {}/__init__.py \;
endef

# Fails when the committed generated code is not what the protos give.
proto-check: $(STAMP)
	rm -rf $(VENV)/gen-check
	$(call generate,$(VENV)/gen-check)
	diff -r -x __pycache__ gen/cw $(VENV)/gen-check/cw > /dev/null || \
		(echo "generated code is stale: run 'make proto' and commit gen/" && exit 1)

# The API as last accepted on purpose: `make lint` fails on any change incompatible with it.
API_BASELINE := protos/baseline.binpb

# Refreshes the baseline from protos/; run only once an API change is meant to stay (see README).
api-baseline: $(STAMP)
	$(BIN)/buf build --exclude-source-info -o $(API_BASELINE)

# The import graph too: a new loop between two packages fails lint (tests/unit/test_package_imports.py,
# which reads the sources and imports none of them).
lint: $(STAMP)
	$(BIN)/buf lint
	$(BIN)/buf breaking --against $(API_BASELINE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q tests/unit/test_package_imports.py

# The real Claude Code CLI the tests run offline against a fake API (tests/e2e/test_real_claude.py):
# pinned, installed once into the checkout (.cache/, ignored by git), so a second run downloads
# nothing. 2.1.197 is the last version whose package asks only for the node Debian ships (>=18);
# it brings its own native binary. node and npm come from Debian's packages when missing (as root).
CLAUDE_CODE_VERSION := 2.1.197
CLAUDE_DIR := $(CURDIR)/.cache/npm/claude-code-$(CLAUDE_CODE_VERSION)
export CW_TEST_CLAUDE := $(CLAUDE_DIR)/node_modules/.bin/claude

claude-cli: $(CLAUDE_DIR)/.installed-stamp

$(CLAUDE_DIR)/.installed-stamp:
	@command -v npm > /dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
			apt-get update -qq && apt-get install -y -qq nodejs npm > /dev/null; \
		else \
			echo "node and npm are missing: install them (sudo apt-get install nodejs npm)"; exit 1; \
		fi; }
	npm install --prefix $(CLAUDE_DIR) --cache $(CURDIR)/.cache/npm/_cacache --no-audit --no-fund \
		--no-save --loglevel error @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)
	$(CW_TEST_CLAUDE) --version
	touch $@

# Four workers on two cores: most tests wait on processes they started (pytest-xdist).
TEST_WORKERS ?= 4

test: $(STAMP) sandbox browser agent-clis proto-check lint claude-cli
	CW_REQUIRE_REAL_CLAUDE=1 CW_REQUIRE_REAL_CLIS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The store and the orchestrator in the foreground on $(CW_HOME); Ctrl-C stops both.
run: $(STAMP) $(if $(findstring --agents-in-sandbox,$(ARGS)),,sandbox)
	$(BIN)/python -m clients.local $(ARGS)

# A scripted walkthrough on a fresh temporary CW_HOME; exits non-zero if anything went wrong.
demo: $(STAMP) sandbox
	$(BIN)/python -m clients.demo

bench: $(STAMP)
	$(BIN)/python -m bench.store_latency
	$(BIN)/python -m bench.store_process
	$(BIN)/python -m bench.orchestrator_phase
	$(BIN)/python -m bench.orchestrator_history
	$(BIN)/python -m bench.many_agents
	$(BIN)/python -m bench.scale_out
	$(BIN)/python -m bench.web_pages
	$(BIN)/python -m bench.sandbox_start

clean:
	rm -rf $(VENV) .cw .pytest_cache .mypy_cache .ruff_cache $(AGENT_CLIS)
