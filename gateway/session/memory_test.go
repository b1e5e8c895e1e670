package session_test

import (
	"testing"

	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/gateway/session/sessiontest"
)

func TestMemoryStore_Conformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) (a, b session.Store) {
		m := session.NewMemory(t.Context(), session.MemoryOptions{})
		return m, m
	})
}
