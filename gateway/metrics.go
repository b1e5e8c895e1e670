package gateway

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meetguard/meetguard/gateway/liveconn"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, live *liveconn.Registry) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "meetguard", Name: "http_requests_total",
			Help: "Requests answered by the gateway, by route kind and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "meetguard", Name: "http_request_duration_seconds",
			Help:    "Time to answer a request (headers, for proxied requests the whole exchange).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"route"}),
	}
	liveGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "meetguard", Name: "live_connections",
		Help: "Proxied long-lived (WebSocket) connections open on this node.",
	}, func() float64 { return float64(live.Count()) })
	for _, c := range []prometheus.Collector{m.requests, m.duration, liveGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

type netDialer struct{ timeout time.Duration }

func (d *netDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: 30 * time.Second}
	return nd.DialContext(ctx, network, addr)
}
