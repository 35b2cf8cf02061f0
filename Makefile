# `make test` is the project's one test command: it builds the virtualenv,
# fetches the Kafka broker jars once, lints, type-checks and runs pytest.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test check lint typecheck pytest compose-test install jars broker-prereqs promtool kcat sarama iptables postgresql kube-tools jaeger go demo bench clean

test: broker-prereqs lint typecheck pytest compose-test

# A contributor's quick check, in under a minute: lint, types, and the tests that start
# no server and run no program make test installs or builds (their markers: pyproject.toml).
check: lint typecheck
	$(BIN)/pytest -q -m "not started and not tools and not compose"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,bench,postgres]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@worse=$$($(BIN)/radon cc --min D --show-complexity common producer consumer localkafka harness bench demo examples); \
	  if [ -n "$$worse" ]; then echo "$$worse"; echo "make lint: functions graded worse than radon C" >&2; exit 1; fi

typecheck: install
	$(BIN)/mypy

# Fail in one line, before any test runs, when no broker can be had.
broker-prereqs:
	@if [ -z "$$KAFKA_TEST_BOOTSTRAP_SERVERS" ] && ! { command -v java && command -v mvn; } >/dev/null 2>&1; then \
	  echo "make test: the tests need a real Kafka broker: install Java 17+ and Maven (apt-get install openjdk-17-jre-headless maven), or set KAFKA_TEST_BOOTSTRAP_SERVERS=host:port to use a running one" >&2; \
	  exit 1; \
	fi

# Resolve the broker's jars up front, so a slow first download is not billed to a test.
jars: install broker-prereqs
	@if [ -z "$$KAFKA_TEST_BOOTSTRAP_SERVERS" ]; then \
	  $(BIN)/python -c 'import localkafka; print("kafka jars:", localkafka.ensure_jars())'; \
	fi

# $(call debian,COMMAND,PACKAGE): as root, install Debian's PACKAGE when COMMAND
# is missing; otherwise say how, and fail.
define debian
@command -v $(1) >/dev/null 2>&1 || { \
  if [ "$$(id -u)" = 0 ]; then \
    echo "installing $(1) (Debian package $(2))"; \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(2) >/dev/null; \
  else \
    echo "make test: $(1) is missing: sudo apt-get install $(2)" >&2; exit 1; \
  fi; \
}
endef

# promtool checks prometheus/*.yml; Debian ships it in the prometheus package
# (nothing is started). docker-compose and hadolint come with the test extra.
promtool:
	$(call debian,promtool,prometheus)

# kcat (librdkafka's command-line client) is one of the foreign clients the
# tests run against our services; Debian ships it.
kcat:
	$(call debian,kcat,kcat)

go:
	@command -v go >/dev/null 2>&1 || { echo "make test: the Go toolchain is missing (it builds tests/sarama, tests/kubetools and tests/kedascaler)" >&2; exit 1; }

# The walkthrough's client, Sarama, as a small Go program of ours (tests/sarama);
# its modules come from the Go module proxy, pinned by go.sum.
sarama: go
	cd tests/sarama && go build -o ../../build/sarama-walkthrough .

# What judges the Helm chart (deploy/helm): helm and kubeconform from the Go
# module proxy at the versions tests/kubetools/go.mod pins; KEDA's own Kafka
# scaler as a program of ours (tests/kedascaler, about 8 minutes cold, a link
# once Go's build cache holds it); and kubeconform's schemas: Kubernetes' from
# kubernetes-validate, the CRDs' from KEDA's and the Prometheus Operator's
# modules (tests/kube.py); and a real kube-apiserver from k8s.io/kubernetes on
# an embedded etcd (tests/kubeapi, about 4 minutes cold). Rebuilt only when
# what they come from changes.
kube-tools: build/bin/helm build/bin/kubeconform build/bin/kedalag build/bin/kubeapi build/kube-schemas/.complete

build/bin/helm build/bin/kubeconform &: tests/kubetools/go.mod tests/kubetools/go.sum | go
	cd tests/kubetools && go build -o ../../build/bin/ helm.sh/helm/v3/cmd/helm github.com/yannh/kubeconform/cmd/kubeconform

build/bin/kedalag: tests/kedascaler/go.mod tests/kedascaler/go.sum tests/kedascaler/main.go | go
	cd tests/kedascaler && go build -o ../../build/bin/kedalag .

# The version Kubernetes' own build stamps in; without it the server says v0.0.0.
build/bin/kubeapi: tests/kubeapi/go.mod tests/kubeapi/go.sum tests/kubeapi/main.go | go
	cd tests/kubeapi && version=$$(go list -m -f '{{.Version}}' k8s.io/kubernetes) && \
	  go build -o ../../build/bin/kubeapi -ldflags "\
	    -X k8s.io/component-base/version.gitVersion=$$version \
	    -X k8s.io/component-base/version.gitMajor=$$(echo $$version | cut -d. -f1 | tr -d v) \
	    -X k8s.io/component-base/version.gitMinor=$$(echo $$version | cut -d. -f2)" .

build/kube-schemas/.complete: tests/kube.py tests/kubetools/go.sum tests/kedascaler/go.sum $(VENV)/.installed
	$(BIN)/python -m tests.kube

# iptables drops packets to a broker's port on loopback for the network-cut test
# (tests/test_network_cut.py); it needs root, as the Docker engine does.
iptables:
	$(call debian,iptables,iptables)

# PostgreSQL's server for the sink's tests (tests/test_postgres_sink.py), which
# start a cluster of their own on loopback; Debian ships it, nothing is started here.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing PostgreSQL (Debian package postgresql)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	  else \
	    echo "make test: PostgreSQL is missing: sudo apt-get install postgresql" >&2; exit 1; \
	  fi; \
	}

# Jaeger v2, the trace backend of the tracing tests and of the compose stand-in:
# about 5 minutes cold on 2 cores, seconds from Go's build cache.
jaeger: build/bin/jaeger

build/bin/jaeger: tests/jaeger/go.mod tests/jaeger/go.sum | go
	cd tests/jaeger && go build -o ../../build/bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

pytest: install jars promtool kcat sarama iptables postgresql kube-tools jaeger
	$(BIN)/pytest -m "not compose"

# docker-compose.yml for real, on a Docker engine: the running one, or (as root
# on Debian) Debian's docker.io started for the run, with its data in
# build/docker; images no registry serves are stood in for by local builds
# (tests/compose/standins). About 5 minutes; see docs/testing.md.
compose-test: install jars jaeger
	$(BIN)/pytest -m compose tests/compose

# The walkthrough's story without Docker: about a minute, Ctrl+C stops it cleanly.
demo: install jars
	$(BIN)/python -m demo

# Figures, not tests: about 15 minutes on one broker of its own; writes
# bench/results/latest.json and the tables of docs/performance.md.
# One case: .venv/bin/python -m bench hotpath --rounds 3
bench: install jars
	$(BIN)/python -m bench --readme docs/performance.md

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.egg-info
