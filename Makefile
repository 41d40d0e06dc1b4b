# fdbox: `make demo` runs a busybox container, `make test` runs unit and integration tests.
# Both are meant for a Debian 12 machine; they install what they need with apt-get.

CARGO ?= cargo
DEMO_BUNDLE := $(CURDIR)/target/demo-bundle
DEMO_ROOT := $(CURDIR)/target/demo-root
FDBOX_RELEASE := $(CURDIR)/target/release/fdbox
# Containers and apt-get need root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all build demo demo-deps test

all: build

build:
	$(CARGO) build --workspace

demo-deps:
	@if [ ! -x /bin/busybox ] || ! command -v jq >/dev/null; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends busybox-static jq; \
	fi

demo: demo-deps
	$(CARGO) build --release -p fdbox
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
