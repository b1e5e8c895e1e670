# The one test command (README): formatting, vet, staticcheck, the whole Go
# test suite with the race detector (Rego policy tests and coverage run
# inside it), and a short pass of every fuzz target's seed corpus.
GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test web-deps lint unit web-test deploy-check build dev bench

test: web-deps lint unit web-test

# The browser code's npm packages, exactly as the lockfile pins them (the Go
# tests of the web client and the bundles need them too).
web-deps: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

# The browser code's Node tests: type check, then node --test.
web-test:
	cd web && npx tsc -p . && node --test test/

build:
	$(GO) build -o bin/meetguard ./cmd/meetguard

dev: build
	./bin/meetguard dev

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -timeout 10m -run '^TestCluster_ThreeNodesBehindNginx' ./cmd/meetguard/
	cd deploy/helm/check && $(GO) test -count=1 ./...
	cd deploy/prometheus/check && $(GO) test -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.out

# The deploy recipes' checks that need promtool (a large build, not run by
# CI unless MEETGUARD_DEPLOY_TOOLS=1): builds it into the user cache, then
# runs the tests that use it. The Helm chart needs no helm binary:
# deploy/helm/check lints and renders it with Helm v4's own packages, and
# `make test` (so CI) runs it.
DEPLOY_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/meetguard
deploy-check:
	GOBIN=$(DEPLOY_CACHE)/promtool $(GO) install github.com/prometheus/prometheus/cmd/promtool@v0.316.0
	MEETGUARD_PROMTOOL=$(DEPLOY_CACHE)/promtool/promtool \
		$(GO) test -count=1 -run 'Promtool|Helm|DeployFiles' ./gateway/metrics/ ./cmd/meetguard/
	cd deploy/helm/check && $(GO) test -count=1 ./...
	cd deploy/prometheus/check && $(GO) test -count=1 ./...

# The peer comparison behind docs/performance.md: the same wrk load against
# the upstream, a plain Go proxy, nginx and Caddy (when installed) and
# meetguard, idle WebSockets per connection, the join storm. Noisy by
# nature, so CI never runs it; the table goes to stdout and bench-peers.md.
.PHONY: bench-peers
bench-peers:
	bench/peers.sh | tee bench-peers.md

# The soak behind docs/performance.md: 1,000 WebSockets held through a real
# gateway, each as its own identity, with join, leave and kick churn for
# DURATION (default 10m), sampling heap, goroutines and descriptors. Minutes
# long and machine-dependent, so CI never runs it; the table goes to stdout
# and bench-soak.md. CONNS, DURATION, CHURN, STORE=redis: see bench/soak.sh.
.PHONY: bench-soak
bench-soak:
	bench/soak.sh | tee bench-soak.md
