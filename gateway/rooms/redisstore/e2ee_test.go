package redisstore_test

import (
	"testing"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore/e2eetest"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// Two nodes, each with its own client and relay, share one redis-server.
func TestE2EE_Conformance(t *testing.T) {
	srv := sharedServer(t)
	e2eetest.Run(t, func(t *testing.T) (a, b e2eestore.Store) {
		p := prefix()
		return node(t, srv, p, rooms.Config{}).E2EE(), node(t, srv, p, rooms.Config{}).E2EE()
	})
}
