# Weft — one plain Makefile, no configure step.
#   make            build/weft
#   make test       install what is missing, build, run unit + e2e tests (also under ASan+UBSan)
#   make bench      side-by-side benchmark against HAProxy and nginx
#   make fuzz       run the libFuzzer targets for a while

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
# Idle RSS (bench: <= 3 MB) is mostly pages mapped at start, so: functions and data in sections
# of their own, which the link drops when nothing calls them (protoc-c's unused pack/unpack);
# relative relocations packed (RELR), so the loader reads a few KB of them, not 130.
CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wno-unused-parameter \
           -Wno-missing-field-initializers -D_GNU_SOURCE -fno-strict-aliasing -fno-math-errno $(SAN) \
           -ffunction-sections -fdata-sections -Isrc -I$(BUILD)/gen $(EXTRA_CFLAGS)
# OpenSSL and PCRE2 are not linked: src/net/ssl_api.c loads OpenSSL when a config first needs
# TLS (unit tests that drive OpenSSL themselves link it), src/core/pcre2_api.c loads PCRE2 at
# the first regex. xxHash is compiled in from its header (src/core/hash.c).
LDLIBS  := -lyaml -lprotobuf-c -ldl -lpthread -lm
LDFLAGS += -Wl,--gc-sections -Wl,-z,pack-relative-relocs $(SAN)

PROTOS    := $(shell find src/xds/proto -name '*.proto' | sort)
GEN_C     := $(patsubst src/xds/proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H     := $(GEN_C:.c=.h)
SRCS      := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
CLI_SRCS  := $(shell find src/cli -name '*.c' | sort)
OBJS      := $(patsubst %.c,$(BUILD)/obj/%.o,$(SRCS)) \
             $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C)) \
             $(BUILD)/obj/gen/registry.o
CLI_OBJS  := $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRCS))
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' | sort)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all deps demo test unit e2e asan bench fuzz clean
.SECONDARY:

all: $(BUILD)/weft

deps:
	@scripts/deps.sh

# Set up, build, and run the proxy on examples/demo.yaml in front of demo upstreams.
demo:
	@scripts/demo.sh

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: src/xds/proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Isrc/xds/proto $<

# Every message descriptor, so that `@type` URLs and Any payloads can be resolved by name.
$(BUILD)/gen/registry.c: $(GEN_H) scripts/gen-registry.sh
	scripts/gen-registry.sh $(BUILD)/gen $(GEN_H) > $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(GEN_H) $(shell find src -name '*.h')
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libweft.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/weft: $(CLI_OBJS) $(BUILD)/libweft.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/libweft.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(BUILD)/libweft.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libweft.a $(LDLIBS) -lssl -lcrypto -lnghttp2 # nghttp2: the HTTP/2 tests' reference peer

unit: $(UNIT_BINS)

# The whole suite: plain build, then the same under AddressSanitizer + UndefinedBehaviorSanitizer.
test: deps
	$(MAKE) all unit
	$(MAKE) BUILD=build/asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" all unit
	tests/run.sh

# The control plane benchmark's load tool: N ADS clients (bench/xds_load.c).
$(BUILD)/xds-load: bench/xds_load.c $(BUILD)/libweft.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libweft.a $(LDLIBS)

bench: deps all $(BUILD)/xds-load
	bench/run.sh

fuzz: deps
	$(MAKE) -C fuzz all run

clean:
	rm -rf build
