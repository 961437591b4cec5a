# touchpointd — build, test and demo. `make help` lists the targets.

CC ?= cc
PKGS := rdkafka jansson hiredis yaml-0.1 libmicrohttpd libcurl
BUILD := build
SANITIZER ?=

WARN := -std=c11 -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wwrite-strings -Wvla -Wformat=2 -fno-common
CFLAGS ?= -O2 -g
ALL_CFLAGS := $(WARN) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -Iprocessor \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
ifneq ($(SANITIZER),)
ALL_CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZER)
endif

TOOL_MAINS := processor/main.c processor/tpgen.c processor/tpraw.c
LIB_SRCS := $(filter-out $(TOOL_MAINS),$(wildcard processor/*.c))
LIB_OBJS := $(LIB_SRCS:processor/%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libtp.a
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
ITEST_SRCS := $(wildcard tests/integration/*.c)
ITEST_BINS := $(ITEST_SRCS:tests/integration/%.c=$(BUILD)/tests/%)
BINS := $(BUILD)/touchpointd $(BUILD)/tpgen $(BUILD)/tpraw

.PHONY: all deps test unit integration demo clean format format-check help \
        tests-build valgrind test-faults bench bench-test docker-test fuzz

all: $(BINS)

help:
	@echo "make            build build/touchpointd and build/tpgen"
	@echo "make deps       install Debian packages and the pinned Kafka broker jars"
	@echo "make test       deps, build, unit tests, integration tests (real Kafka + Redis)"
	@echo "make unit       unit tests only (no servers)"
	@echo "make test-faults  crash, outage, rebalance and memory-bound tests"
	@echo "make demo       local Redis + Kafka, a generated stream, KPIs read back"
	@echo "make SANITIZER=address,undefined test   the same under ASan/UBSan"
	@echo "make valgrind   unit tests under valgrind"
	@echo "make fuzz       differential fuzzing, scanner vs jansson (FUZZ_SECONDS, default 60)"
	@echo "make docker-test  the container image against real Kafka and Redis"
	@echo "make bench      raw/run/replay/run.long/micro benchmark (BENCH_EVENTS, default 2000000)"
	@echo "make bench-test a tiny bench (20,000 events) that checks the harness"
	@echo "make format / format-check              clang-format"

$(BUILD)/obj/%.o: processor/%.c $(wildcard processor/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The flush script travels inside the binary as a byte array (a string
# literal this long would trip -Woverlength-strings).
$(BUILD)/gen/flush_lua.h: processor/flush.lua
	@mkdir -p $(BUILD)/gen
	{ od -An -v -tx1 $< | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo 0x00; } > $@

$(BUILD)/obj/store.o: processor/store.c $(BUILD)/gen/flush_lua.h $(wildcard processor/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -I$(BUILD)/gen -c $< -o $@

$(LIB): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/touchpointd: processor/main.c $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -o $@

$(BUILD)/tpgen: processor/tpgen.c $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -o $@

$(BUILD)/tpraw: processor/tpraw.c $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -o $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -lcmocka -o $@

# Integration helpers are deliberately independent of the product's code: they
# link only the external libraries.
$(BUILD)/tests/%: tests/integration/%.c | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIBS) -o $@

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

deps:
	tests/harness/deps.sh

tests-build: $(BINS) $(UNIT_BINS) $(ITEST_BINS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; TP_TESTDATA=tests/data $$t; done

integration: tests-build
	tests/integration/run-all.sh

test-faults: deps
	$(MAKE) tests-build
	tests/faults/run-all.sh

# The container image (docker/Dockerfile) against the harness's Redis and
# Kafka; starts dockerd if none runs, bootstraps the base image once into .cache/.
docker-test: deps
	tests/integration/docker-test.sh

# Differential fuzzing of the scanner against the jansson validator;
# FUZZ_SECONDS=600 make fuzz for a longer run by hand.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

test: deps
	$(MAKE) tests-build
	$(MAKE) unit
	$(MAKE) fuzz
	$(MAKE) integration
	$(MAKE) docker-test

demo: deps
	$(MAKE) all
	tests/harness/demo.sh

# The bench compiles tests/bench/micro.c against $(LIB) with these flags.
BENCH_ENV = BENCH_CC="$(CC)" BENCH_CFLAGS="$(ALL_CFLAGS)" \
            BENCH_LDFLAGS="$(LDFLAGS)" BENCH_LIBS="$(LIBS)"

bench: deps
	$(MAKE) all
	$(BENCH_ENV) tests/bench/bench.sh

bench-test: deps
	$(MAKE) all
	$(BENCH_ENV) tests/bench/bench-test.sh

valgrind: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
	  TP_TESTDATA=tests/data valgrind -q --error-exitcode=1 --leak-check=full $$t >/dev/null; done

format:
	clang-format -i processor/*.[ch] tests/unit/*.c tests/integration/*.c

format-check:
	clang-format --dry-run --Werror processor/*.[ch] tests/unit/*.c tests/integration/*.c

clean:
	rm -rf $(BUILD)
