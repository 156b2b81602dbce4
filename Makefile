# wspush — see README.md.
CARGO ?= cargo
AUTOBAHN_DIR ?= target/autobahn

.PHONY: run build test fmt lint autobahn bench soak clean

run:
	$(CARGO) run --release --bin wspush -- --html-dir html

build:
	$(CARGO) build --release

test:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets

fmt:
	$(CARGO) fmt --all

autobahn:
	bash scripts/autobahn.sh

bench:
	bash scripts/bench.sh suite

soak:
	bash scripts/bench.sh soak

clean:
	$(CARGO) clean
