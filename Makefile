# fdbox: `make demo` runs a busybox container, `make test` runs unit and integration tests.
# Both are meant for a Debian 12 machine; they install what they need with apt-get.

CARGO ?= cargo
DEMO_BUNDLE := $(CURDIR)/target/demo-bundle
DEMO_ROOT := $(CURDIR)/target/demo-root
# Release binaries (`make release`) are linked statically against glibc (crt-static): no
# dynamic loader and no shared libraries to map at each start, which is a third of a
# millisecond and a megabyte of peak RSS per `fdbox` invocation (see bench/). Built with an
# explicit --target so that the flag does not reach build scripts and proc macros.
RELEASE_TARGET := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
RELEASE_DIR := $(CURDIR)/target/$(RELEASE_TARGET)/release
FDBOX_RELEASE := $(RELEASE_DIR)/fdbox
RELEASE_RUSTFLAGS_VAR := CARGO_TARGET_$(shell echo '$(RELEASE_TARGET)' | tr 'a-z.-' 'A-Z__')_RUSTFLAGS
# Containers and apt-get need root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all build release demo demo-deps test

all: build

build:
	$(CARGO) build --workspace

# target/<host triple>/release/{fdbox,containerd-shim-fdbox-v2,fdbox-pidfd}, static.
release:
	$(RELEASE_RUSTFLAGS_VAR)="-C target-feature=+crt-static" \
		$(CARGO) build --release --target $(RELEASE_TARGET) -p fdbox -p fdbox-shim

demo-deps:
	@if [ ! -x /bin/busybox ] || ! command -v jq >/dev/null; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends busybox-static jq; \
	fi

demo: demo-deps release
	scripts/mkbundle.sh $(DEMO_BUNDLE) $(FDBOX_RELEASE)
	@# A demo container left by an interrupted run would make the id a duplicate.
	@$(SUDO) $(FDBOX_RELEASE) --root $(DEMO_ROOT) delete -f demo >/dev/null 2>&1 || true
	$(SUDO) $(FDBOX_RELEASE) --root $(DEMO_ROOT) run --bundle $(DEMO_BUNDLE) demo

# The integration tests (tests/) run real containers, so they need root. Set
# FDBOX_TEST_RUNTIME=runc to run them against runc instead of fdbox.
test:
	@[ "$$(id -u)" -eq 0 ] || { echo "make test: run as root (the tests run real containers)" >&2; exit 1; }
	scripts/install-test-deps.sh
	$(CARGO) build -p fdbox
	$(CARGO) test --workspace --no-fail-fast

# Benchmarks (issue 8): fdbox, crun and runc measured in the same run, interleaved round by
# round, in a private mount namespace; writes docs/bench.md and docs/bench.svg (see bench/).
# `make soak` runs SOAK_N sequential `fdbox run`s and reports hangs and leaks (not in CI).
BENCH_ROUNDS ?= 60
BENCH_FDBOX ?= $(FDBOX_RELEASE)
# BENCH_NOTE="…" adds a note to docs/bench.md (read from the environment, never parsed by a shell).
export BENCH_NOTE
SOAK_N ?= 10000
FDBOX_BENCH := $(CURDIR)/target/release/fdbox-bench

.PHONY: bench soak

# Installs what is missing from the given package list (Debian 12, as root).
define bench_deps
	@[ "$$(id -u)" -eq 0 ] || { echo "make $@: run as root (it runs real containers)" >&2; exit 1; }
	scripts/apt-install-missing.sh $(1)
endef

bench: release
	$(call bench_deps,busybox-static runc crun util-linux)
	$(CARGO) build --release -p fdbox-bench
	$(FDBOX_BENCH) bench --fdbox $(BENCH_FDBOX) --rounds $(BENCH_ROUNDS) \
		--out $(CURDIR)/docs --raw $(CURDIR)/target/bench-samples.csv

soak: release
	$(call bench_deps,busybox-static)
	$(CARGO) build --release -p fdbox-bench
	$(FDBOX_BENCH) soak --fdbox $(BENCH_FDBOX) -n $(SOAK_N)

# VM tests (vm-tests/): the integration tests inside qemu VMs booted from Debian kernels, on a
# pure cgroup v2 machine. VM_KERNELS selects kernels, e.g. `make vm-test VM_KERNELS=6.1` (default:
# every kernel in vm-tests/src/kernel.rs); VM_TEST_ARGS passes more options to the runner
# (`--filter TEXT`, `--accel tcg`, `--timeout SECS`; `--help` lists them).
VM_KERNELS ?=
VM_TEST_ARGS ?=

.PHONY: vm-test
vm-test:
	vm-tests/install-deps.sh
	$(CARGO) run -q -p fdbox-vm-tests -- $(if $(strip $(VM_KERNELS)),--kernels "$(VM_KERNELS)") $(VM_TEST_ARGS)

# Kubernetes through CRI (issue 11): containerd 1.6's CRI plugin with the runtime handlers runc,
# fdbox-runc-shim and fdbox, driven with the kubelet's calls (cri-test/, see docs/kubernetes.md).
# Runs that scenario alone (`make test` runs it too) and ends with a plain `N passed, M failed`.
.PHONY: cri-test
cri-test:
	@[ "$$(id -u)" -eq 0 ] || { echo "make cri-test: run as root (it runs real containers)" >&2; exit 1; }
	scripts/install-test-deps.sh
	$(CARGO) build -p fdbox -p fdbox-shim
	@mkdir -p target; rm -f target/cri-test.rc; \
	{ $(CARGO) test -p fdbox-cri-test --test cri -- --nocapture --test-threads=1 2>&1; echo $$? > target/cri-test.rc; } \
		| tee target/cri-test.log; \
	rc=$$(cat target/cri-test.rc 2>/dev/null || echo 1); \
	set -- $$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed/) p += $$i; if ($$(i+1) ~ /^failed/) f += $$i } } \
		/^skipped:/ { s++ } END { print p + 0, f + 0, s + 0 }' target/cri-test.log); \
	passed=$$1; failed=$$2; skipped=$$3; \
	[ "$$rc" -ne 0 ] && [ "$$failed" -eq 0 ] && failed=1; \
	passed=$$((passed > skipped ? passed - skipped : 0)); \
	echo "$$passed passed, $$failed failed, $$skipped skipped"; \
	exit $$rc
