// Package deploy holds no code: it is the home of the deployment recipes
// (systemd unit, container image and compose file, Helm chart, Grafana
// dashboard, Prometheus rules) and of the tests that check them, so that
// `go test ./...` catches a recipe that no longer matches the gateway.
package deploy
