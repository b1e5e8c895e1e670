package e2eeapi

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
)

// roomsPrefix is where room APIs live; the e2ee endpoints are /.meetguard/api/v1/rooms/{room}/e2ee/{endpoint}.
const roomsPrefix = "/.meetguard/api/v1/rooms/"

// endpoint describes one endpoint: its method and the query parameters it takes.
type endpoint struct {
	method   string
	params   []string // allowed
	required []string
}

var endpoints = map[string]endpoint{
	e2eehttp.EndpointAuthority:   {method: "GET"},
	e2eehttp.EndpointNonce:       {method: "POST"},
	e2eehttp.EndpointRegister:    {method: "POST"},
	e2eehttp.EndpointRoster:      {method: "GET", params: []string{"since", "after", "wait"}},
	e2eehttp.EndpointKeyPackages: {method: "GET POST", params: []string{"epoch"}},
	e2eehttp.EndpointCommits:     {method: "POST", params: []string{"epoch"}, required: []string{"epoch"}},
	e2eehttp.EndpointKeys:        {method: "GET", params: []string{"epoch"}, required: []string{"epoch"}},
	e2eehttp.EndpointWait:        {method: "GET", params: []string{"after", "wait"}, required: []string{"after"}},
	endpointAlarms:               {method: "POST"},
}

// query holds the parsed parameters of one request.
type query struct {
	since, after, epoch uint64
	wait                time.Duration
	has                 map[string]bool
}

// parseQuery parses a raw query strictly for endpoint name: only its parameters, each at most once, numbers in
// canonical decimal, wait a non-negative Go duration ("25s", "1500ms").
func parseQuery(name, raw string) (query, error) {
	q := query{has: map[string]bool{}}
	ep := endpoints[name]
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("query: %w", err)
	}
	for key, vs := range vals {
		allowed := false
		for _, p := range ep.params {
			allowed = allowed || p == key
		}
		if !allowed {
			return q, fmt.Errorf("query: parameter %q not allowed on %s", key, name)
		}
		if len(vs) != 1 {
			return q, fmt.Errorf("query: parameter %q given %d times", key, len(vs))
		}
		v := vs[0]
		switch key {
		case "wait":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return q, fmt.Errorf("query: wait: %q is not a non-negative duration such as 25s", v)
			}
			q.wait = d
		default:
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || strconv.FormatUint(n, 10) != v {
				return q, fmt.Errorf("query: %s: %q is not a decimal number", key, v)
			}
			switch key {
			case "since":
				q.since = n
			case "after":
				q.after = n
			case "epoch":
				q.epoch = n
			}
		}
		q.has[key] = true
	}
	for _, key := range ep.required {
		if !q.has[key] {
			return q, fmt.Errorf("query: parameter %q is required on %s", key, name)
		}
	}
	if q.has["wait"] && !q.has["after"] {
		return q, fmt.Errorf("query: wait needs after")
	}
	return q, nil
}
