GO      ?= go
BIN     := bin/veneurd
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# staticcheck, pinned, fetched from the Go module proxy on first use.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test lint testdeps gen examples plugins fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/veneurd

run: build
	./$(BIN) run

test: build examples testdeps lint
	# One package at a time: the end-to-end tests time flushes, and the load
	# generator's tests flood sockets and cores.
	$(GO) test -count=1 -timeout 15m -p 1 ./...

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

testdeps:
	./scripts/test-deps.sh

examples:
	$(GO) build -o bin/sink_example ./examples/plugins/sink_example
	$(GO) build -o bin/source_example ./examples/plugins/source_example

# Each vendor sink as its own binary, bin/veneurd-sink-<type>: the same code
# the veneurd binary serves as a builtin, to ship and pin on its own.
plugins:
	@for d in plugins/sinks/*/cmd/veneurd-sink-* plugins/sources/*/cmd/veneurd-source-*; do \
	  [ -d "$$d" ] || continue; \
	  echo "$(GO) build -o bin/$${d##*/} ./$$d"; \
	  $(GO) build -ldflags "$(LDFLAGS)" -o bin/$${d##*/} ./$$d || exit 1; \
	done

gen:
	protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative sdk/proto/plugin.proto
	protoc --go_out=. --go_opt=paths=source_relative plugins/sinks/kafka/point.proto
	protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative core/forward/forwardpb/forward.proto
	# Veneur's forward protocol (core/forward/veneur.go), copied from Veneur v14.2.0.
	protoc --go_out=. --go_opt=paths=source_relative \
	  core/forward/veneurpb/tdigestpb/tdigest.proto core/forward/veneurpb/metricpb/metric.proto
	protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative core/forward/veneurpb/forwardrpc/forward.proto
	protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative plugins/sources/ssf/ssfpb/ssf.proto

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParseMetric -fuzztime=20s ./plugins/sources/dogstatsd/
	$(GO) test -run='^$$' -fuzz=FuzzParseEvent -fuzztime=10s ./plugins/sources/dogstatsd/
	$(GO) test -run='^$$' -fuzz=FuzzParseServiceCheck -fuzztime=10s ./plugins/sources/dogstatsd/
	$(GO) test -run='^$$' -fuzz=FuzzMergeRecords -fuzztime=10s ./internal/state/
	$(GO) test -run='^$$' -fuzz=FuzzVeneurMetric -fuzztime=10s ./core/forward/
	$(GO) test -run='^$$' -fuzz=FuzzBody -fuzztime=10s ./plugins/sources/openmetrics/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeProtobuf -fuzztime=10s ./plugins/sources/otlp/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeJSON -fuzztime=10s ./plugins/sources/otlp/
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=10s ./plugins/sources/ssf/

bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -count=3 ./sdk/... ./core/... ./internal/... ./plugins/...
	./scripts/bench.sh

clean:
	rm -rf bin
