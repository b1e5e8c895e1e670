package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// forbiddenBuiltin says why a built-in is kept out of meetguard policies.
// Admission must depend only on the input the gateway verified and on the
// bundle's data: never on the network, the host, or chance, so that a
// decision can be replayed from the audit log and cannot leak anything.
func forbiddenBuiltin(name string) (why string, forbidden bool) {
	switch name {
	case "http.send", "providers.aws.sign_req":
		return "it reaches the network", true
	case "net.lookup_ip_addr":
		return "it reaches the network (DNS)", true
	case "opa.runtime":
		return "it reveals the gateway's environment and configuration", true
	case "rand.intn", "uuid.rfc4122":
		return "it makes decisions unrepeatable", true
	}
	return "", false
}

// capabilities is OPA's built-in set for this version without the forbidden
// built-ins, and with no network access for anything else (remote JSON
// schema references included).
func capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	kept := c.Builtins[:0]
	for _, b := range c.Builtins {
		if _, bad := forbiddenBuiltin(b.Name); !bad {
			kept = append(kept, b)
		}
	}
	c.Builtins = kept
	c.AllowNet = []string{}
	return c
}
