package e2eeapi_test

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(m.Run()) }

func dumpLogs(t *testing.T, e *env) {
	if os.Getenv("DUMP") != "" {
		os.WriteFile("/tmp/e2eeapi.log", e.logs.Bytes(), 0o644)
	}
}
