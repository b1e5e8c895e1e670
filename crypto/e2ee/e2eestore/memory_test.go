package e2eestore_test

import (
	"testing"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore/e2eetest"
)

func TestMemory_Conformance(t *testing.T) {
	e2eetest.Run(t, func(t *testing.T) (a, b e2eestore.Store) {
		s := e2eestore.NewMemory(nil)
		return s, s
	})
}
