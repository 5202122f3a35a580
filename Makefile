# tapis-agent — ssh-agent for Tapis tokens.
SHELL := /bin/bash
GO ?= go
PREFIX ?= $(HOME)/.local
BINDIR ?= $(PREFIX)/bin
# Empty: ~/.config/systemd/user (or ~/Library/LaunchAgents), or
# PREFIX/lib/systemd/user for a PREFIX outside the home (contrib/install.sh).
UNITDIR ?=
# Evaluated once per make run, so that every target of one run (the
# binaries, the Python package, its tests) carries the same version.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
COMMIT := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
CMDS := tapis-agent tapis-token tapis-fake
OUT ?= bin
FUZZTIME ?= 30s
PYTHON ?= /usr/bin/python3

# The release targets: make cross builds and vets for each, make dist
# packs an archive for each.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 freebsd/amd64

.PHONY: help build python check unit test checks gotest pytest lint cross fmt-check units-check demo bench fuzz install uninstall dist dist-check clean

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

units-check: build ## check the systemd user units (systemd-analyze) and the LaunchAgent, as install writes them
	@bash contrib/systemd/verify.sh $(OUT)
	@$(PYTHON) -B contrib/launchd/verify.py $(OUT)

demo: build ## see the whole product work on a built-in fake tenant
	@bash contrib/demo.sh

bench: build ## benchmarks as one table of ratios against baselines of the same run (bench/results.md)
	$(GO) run ./bench/cmd/benchtable -bin $(OUT) -out bench/results.md

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

# The same script as in the release archives, given this tree and bin/.
install: build ## install into PREFIX (default ~/.local): binaries, completion, systemd units or LaunchAgent
	sh contrib/install.sh --source . --binaries $(OUT) --prefix '$(PREFIX)' --bindir '$(BINDIR)' $(if $(UNITDIR),--unitdir '$(UNITDIR)')

uninstall: ## remove what make install (or an archive's install.sh) put into PREFIX
	sh contrib/install.sh --uninstall --prefix '$(PREFIX)'

# Release archives, byte for byte the same from any clone of the same
# commit (see contrib/dist.sh); the Python wheel goes into each.
dist: export SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null)
dist: python ## release archives and SHA256SUMS into dist/ for PLATFORMS: make dist VERSION=x.y.z
	@[[ '$(VERSION)' =~ ^[0-9]+\.[0-9]+\.[0-9]+$$ ]] || { echo "make dist: give the release version: make dist VERSION=x.y.z (got '$(VERSION)')" >&2; exit 2; }
	bash contrib/dist.sh --version '$(VERSION)' --out dist --wheel-dir dist $(PLATFORMS)

# Two clones of HEAD, one make dist each: their SHA256SUMS must match.
dist-check: ## check that make dist is reproducible: two clones of HEAD, identical archives
	bash contrib/dist-check.sh

clean: ## remove build output
	rm -rf $(OUT)
