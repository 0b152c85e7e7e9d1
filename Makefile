# erlang_python, port edition. `make demo` and `make test` install what is missing
# (scripts/setup.sh) and build everything first.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := /usr/local/go/bin:$(PATH)

REBAR3 ?= rebar3
FUZZTIME ?= 5m
SHORT_FUZZTIME ?= 15s
# Go commands run with cgo pointed at the chosen Python (scripts/pick-python.sh).
GO := scripts/with-python.sh go
# pyx_testhook: the C conversion test hooks (pyetf/convert_testhook.go), kept out of pyport
GOTEST := $(GO) test -tags pyx_testhook
# The cgo packages, which embed CPython (or link with it).
CGO_PKGS := ./port ./store ./pyetf ./pool ./cmd/pyport
# The Python source embedded in pyport (go:embed).
PY_SRCS := $(wildcard pyetf/py/*.py pool/py/*.py pool/py/*.pyi)
LOGS := _build/test-logs
# The other Pythons the tests run on, when present: Debian's 3.11 (multi_executor,
# installed by setup.sh) and pyenv's 3.12 (own-GIL sub-interpreters with the
# decimal/datetime guard).
PY311_CONFIG ?= /usr/bin/python3.11-config
PY312_CONFIG ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null || echo /root/.pyenv)/versions/3.12*/bin/python3.12-config))
PYPORT_311 := _build/pyport-py311
# Strip colour codes from logged output.
NOCOLOR := sed -e 's/\x1b\[[0-9;]*m//g'

.PHONY: all setup build test demo bench bench-ab soak fuzz clean

all: build

setup:
	@bash scripts/setup.sh

# The rebar3 pre-compile hook also builds pyport; building it here first keeps
# `make build` independent of the hook.
build: setup
	@bash scripts/build-pyport.sh
	cd erlang && $(REBAR3) compile

test: build
	@mkdir -p $(LOGS)
	@echo "== gofmt -l"
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	@echo "== go vet"
	$(GO) vet ./... && $(GO) vet -tags pyx_testhook ./pyetf
	@echo "== python -m py_compile"
	py=$$(scripts/pick-python.sh 2>/dev/null); py=$${py%-config}; [ -x "$$py" ] || py=python3; \
	  "$$py" -X pycache_prefix=$(CURDIR)/_build/pycache -m py_compile $(PY_SRCS)
	@echo "== rebar3 xref"
	cd erlang && $(REBAR3) xref
	@echo "== Erlang module cycles"
	escript scripts/module-cycles.escript erlang/_build/default/lib/erlang_python/ebin
	@echo "== rebar3 dialyzer"
	cd erlang && $(REBAR3) dialyzer
	@echo "== rebar3 edoc"
	cd erlang && $(REBAR3) edoc
	@echo "== fuzz FuzzDecode ($(SHORT_FUZZTIME))"
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(SHORT_FUZZTIME) ./etf 2>&1 | tee $(LOGS)/fuzz.log
	@echo "== rebar3 eunit"
	cd erlang && $(REBAR3) eunit 2>&1 | tee ../$(LOGS)/eunit.log
	@echo "== rebar3 ct"
	cd erlang && $(REBAR3) ct 2>&1 | tee ../$(LOGS)/ct.log
	@echo "== rebar3 ct on Python 3.11 (multi_executor)"
	PYTHON_CONFIG=$(PY311_CONFIG) bash scripts/build-pyport.sh $(PYPORT_311)
	cd erlang && ERLANG_PYTHON_PYPORT=$(CURDIR)/$(PYPORT_311) $(REBAR3) ct 2>&1 | tee ../$(LOGS)/ct-py311.log
	@echo "== go test -race"
	ETF_REQUIRE_ERL=1 $(GOTEST) -race ./... 2>&1 | tee $(LOGS)/go-test.log
	@echo "== go test -race $(CGO_PKGS) on Python 3.12 and 3.11"
	@: > $(LOGS)/go-test-other.log
	for cfg in $(PY312_CONFIG) $(PY311_CONFIG); do \
	  echo "python: $$cfg" | tee -a $(LOGS)/go-test-other.log; \
	  PYTHON_CONFIG=$$cfg $(GOTEST) -race -count=1 $(CGO_PKGS) 2>&1 | tee -a $(LOGS)/go-test-other.log; \
	done
	@echo "== dependency by git URL: rebar3 app, mix project, the hex files list, the build hook"
	bash scripts/dep-test.sh 2>&1 | tee $(LOGS)/dep.log
	@echo
	@echo "== summary"
	@printf 'fuzz:  %s\n' "$$($(NOCOLOR) $(LOGS)/fuzz.log | grep -E '^(ok|PASS|FAIL)' | tail -n1)"
	@printf 'eunit: %s\n' "$$($(NOCOLOR) $(LOGS)/eunit.log | grep -a -E 'tests? passed|Failed:|There were no tests' | tail -n1 | sed 's/^ *//')"
	@printf 'ct:    %s\n' "$$($(NOCOLOR) $(LOGS)/ct.log | grep -a -E 'tests? passed|Passed [0-9]+ tests|Failed [0-9]+ tests?' | tail -n1)"
	@printf 'ct 3.11: %s\n' "$$($(NOCOLOR) $(LOGS)/ct-py311.log | grep -a -E 'tests? passed|Passed [0-9]+ tests|Failed [0-9]+ tests?' | tail -n1)"
	@printf 'dep:   %s\n' "$$($(NOCOLOR) $(LOGS)/dep.log | grep -E '^dep: [0-9]+ passed' | tail -n1 | sed 's/^dep: //')"
	@$(NOCOLOR) $(LOGS)/go-test-other.log | grep -E '^(python:|ok|FAIL|---)' | sed 's/^/go:    /'
	@$(NOCOLOR) $(LOGS)/go-test.log | grep -E '^(ok|FAIL|---)'

demo: build
	escript demo/demo.escript erlang/priv/pyport

bench: build
	$(GOTEST) -run='^$$' -bench=. -benchmem ./etf ./pool
	escript bench/bench.escript erlang/priv/pyport

# A/B against a base revision: make bench-ab BASE=<rev> (AB_RUNS runs each, alternated).
BASE ?= HEAD~1
bench-ab: setup
	bash scripts/bench-ab.sh $(BASE)

# Long runs (issue #5): 1M calls (RSS before/after) and restart times.
soak: build
	escript bench/soak.escript erlang/priv/pyport

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./etf

clean:
	rm -rf _build erlang/_build erlang/logs erlang/rebar3.crashdump erlang/priv/pyport erlang/priv/pyport.stamp erlang/priv/pyport.python erlang/doc
