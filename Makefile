# tapis-agent — ssh-agent for Tapis tokens.
SHELL := /bin/bash
GO ?= go
PREFIX ?= $(HOME)/.local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(HOME)/.config/systemd/user
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
# Evaluated once per make run, so that every target of one run (the
# binaries, the Python package, its tests) carries the same version.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
LDFLAGS := -s -w -X main.version=$(VERSION)
CMDS := tapis-agent tapis-token tapis-fake
OUT ?= bin
FUZZTIME ?= 30s
PYTHON ?= /usr/bin/python3

# The release targets: make cross builds and vets for each, make dist
# packs an archive for each.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 freebsd/amd64

.PHONY: help build python check unit test checks gotest pytest lint cross fmt-check units-check demo bench fuzz install clean

help: ## show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Static binaries (no cgo): they start faster and run on any Linux login
# node, whatever its C library.
build: ## build the binaries into bin/ (OUT=dir for another)
	@mkdir -p $(OUT)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/ $(addprefix ./cmd/,$(CMDS))

# The Python package, built offline with Debian's setuptools
# (python3-build, python3-setuptools, python3-wheel) and the project's
# version.
python: ## build the Python package's wheel and sdist into dist/
	$(PYTHON) contrib/python/build_dist.py --version '$(VERSION)' --outdir dist

# The quick part, for day-to-day work: what changed is vetted and its
# unit tests run (Go caches the results of the rest), without the race
# detector, the end-to-end tests, the Python tests or the cross-builds.
# `make test` runs everything before a change lands.
check: ## the quick checks: gofmt, go vet, staticcheck, unit tests (under 30 s on a warm cache)
	@$(MAKE) --no-print-directory -j3 fmt-check lint unit

unit: ## Go unit tests, all packages but the end-to-end tests and benchmarks
	@set -o pipefail; $(GO) test $$($(GO) list ./... | grep -v -e '/e2e$$' -e '/bench') | grep -v 'no test files'

# The checks run side by side: the end-to-end tests mostly wait on timers
# and processes, which leaves the CPUs to the others.
test: ## run every check: vet, staticcheck, cross-builds, gofmt, systemd units, race-enabled tests, Python client
	@$(MAKE) --no-print-directory -j4 checks

checks: lint cross fmt-check units-check gotest pytest

# One line per package, and per end-to-end test, as each ends; a failing
# test's whole output. Every suite runs the binaries of $(OUT)/, built once.
# The end-to-end tests wait side by side, more of them than there are CPUs.
gotest: build ## race-enabled Go tests
	@set -o pipefail; TAPIS_AGENT_BIN=$(abspath $(OUT)) $(GO) test -race -count=1 -parallel 8 -json ./... | $(GO) run ./e2e/testprogress -tests '/e2e$$'

# The Python tests run against the wheel, installed into a fresh venv of
# Debian's python3 (python3-venv) that also sees the system's packages: CI
# gives it python3-ipykernel, python3-jupyter-client and python3-requests.
# The tests run the binaries of $(OUT)/. Importing ipykernel's kernelspec
# imports debugpy, which warns about frozen modules on every run: a note
# for debugger users, not about these tests.
PYVENV = $(abspath $(OUT))/pyvenv
pytest: build python ## test the installed Python package, its Jupyter use and the bash completion
	@rm -rf $(PYVENV)
	$(PYTHON) -m venv --system-site-packages $(PYVENV)
	$(PYVENV)/bin/python -m pip install -q --no-index --no-deps --disable-pip-version-check dist/tapis_agent-*.whl
	PYDEVD_DISABLE_FILE_VALIDATION=1 TAPIS_AGENT_BIN=$(abspath $(OUT)) TAPIS_AGENT_VERSION='$(VERSION)' $(PYVENV)/bin/python -B -m unittest discover -q -s contrib/python/tests -t contrib/python/tests

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# A Linux-only call outside a file built for Linux alone breaks the build
# of the others: each platform's build and vet (which type-checks the
# tests as well) catches it on every change.
cross: ## build and vet for every release platform (PLATFORMS)
	@set -e; for p in $(PLATFORMS); do \
	  echo "cross: $$p"; \
	  CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath ./...; \
	  CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./...; \
	done

fmt-check: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

units-check: build ## systemd-analyze verify the user units, as install writes them
	@bash contrib/systemd/verify.sh $(OUT)

demo: build ## see the whole product work on a built-in fake tenant
	@bash contrib/demo.sh

bench: build ## benchmarks as one table of ratios against baselines of the same run (bench/results.md)
	$(GO) run ./bench/cmd/benchtable -bin $(OUT) -out bench/results.md

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

install: build ## install binaries into PREFIX/bin, the systemd user units and completions
	install -d $(BINDIR) $(UNITDIR)
	install -m 0755 $(OUT)/tapis-agent $(OUT)/tapis-token $(BINDIR)/
	sed 's|@BINDIR@|$(BINDIR)|g' contrib/systemd/tapis-agent.service > $(UNITDIR)/tapis-agent.service
	chmod 0644 $(UNITDIR)/tapis-agent.service
	install -m 0644 contrib/systemd/tapis-agent.socket $(UNITDIR)/
	install -d $(COMPLETIONDIR)
	install -m 0644 contrib/completion/tapis.bash $(COMPLETIONDIR)/tapis-agent
	install -m 0644 contrib/completion/tapis.bash $(COMPLETIONDIR)/tapis-token
	@echo "installed into $(BINDIR) and $(UNITDIR)"
	@echo "run it with systemd:  systemctl --user daemon-reload && systemctl --user enable --now tapis-agent.socket"
	@echo "or, without systemd, add to ~/.bashrc:  eval \"\$$($(BINDIR)/tapis-agent start -q)\""

clean: ## remove build output
	rm -rf $(OUT)
