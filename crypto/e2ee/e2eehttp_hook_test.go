package e2ee_test

import (
	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
)

// The web client tests serve the Authority over HTTP with the gateway's error table; the internal test files
// cannot import e2eehttp (it imports this package), so it is handed in from here.
func init() { e2ee.SetHTTPErrorStatus(e2eehttp.ErrorStatus) }
