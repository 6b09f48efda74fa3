# Cold Start Analyzer: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
BUILD_DIR := backend/build
ASAN_DIR := backend/build-asan
JOBS ?= 2

.PHONY: all build build-asan run test lint format bench bench-queries fuzz soak extension stop clean deps help

all: build

help:
	@echo "make run    - set up everything (packages, PostgreSQL, schema, demo key) and start coldstartd on :8000"
	@echo "make test   - the same set-up from scratch, then every test suite"
	@echo "make lint   - formatting (clang-format, Biome) and static analysis (cppcheck, Biome); make format rewrites"
	@echo "make build  - build backend/build/coldstartd"
	@echo "make bench  - ingest benchmark (see BENCHMARKS.md); make bench-queries: read API latency"
	@echo "make fuzz   - every libFuzzer target for FUZZ_SECONDS (60) each (see RELIABILITY.md)"
	@echo "make soak   - bounded endurance run (SOAK_SECONDS, default 600)"
	@echo "make extension - the Lambda extension and its layer zips (extension/build/)"
	@echo "make stop   - stop the project-local PostgreSQL started by make run"

deps:
	@scripts/deps.sh run

# cmake is given physical paths: CMake refuses a build folder whose cache was written under another
# path, and tests/docs/run.sh builds through a folder of symlinks to this one
build: deps
	@cmake -S $(realpath backend) -B $(realpath backend)/build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(realpath backend)/build -j$(JOBS)

build-asan:
	@cmake -S backend -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DCSA_SANITIZE=ON -DCSA_WERROR=ON >/dev/null
	@cmake --build $(ASAN_DIR) -j$(JOBS)

run:
	@scripts/run.sh

test:
	@scripts/test.sh

lint:
	@scripts/deps.sh lint
	@scripts/lint.sh

format:
	@scripts/deps.sh lint
	@scripts/format.sh

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@bench/ingest.sh

bench-queries:
	@$(MAKE) --no-print-directory build
	@bench/queries.sh

FUZZ_SECONDS ?= 60
fuzz:
	@scripts/deps.sh test
	@backend/fuzz/run.sh $(FUZZ_SECONDS)

soak:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@bench/soak.sh

extension:
	@scripts/deps.sh test
	@extension/build.sh

stop:
	@scripts/pg.sh stop .data/pg

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
