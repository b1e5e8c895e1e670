package securityconsole

import (
	"cmp"
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/web"
)

// DefaultIntegrityWait is how long an integrity page view waits for the
// chain check it starts before showing its progress instead.
const DefaultIntegrityWait = time.Second

// integrityView is the integrity page.
type integrityView struct {
	NoKeys   bool
	Report   *audit.IntegrityReport
	Progress audit.IntegrityProgress
	Failed   bool // the last check could not read the log
}

// checkIntegrity starts a chain check unless one runs, and returns a
// channel closed when the running one ends.
func (c *Console) checkIntegrity() <-chan struct{} {
	c.intMu.Lock()
	defer c.intMu.Unlock()
	if c.intDone != nil {
		select {
		case <-c.intDone:
		default:
			return c.intDone // under way
		}
	}
	done := make(chan struct{})
	c.intDone = done
	go func() {
		defer close(done)
		// Not the request's context: a check of a big log outlives the
		// view that started it, and the next view shows its result.
		_, err := c.monitor.Update(context.Background(), c.o.Files)
		c.intMu.Lock()
		c.intFailed = err != nil
		c.intMu.Unlock()
		if err != nil {
			c.o.Logger.Warn("security console: audit chain check failed", zap.Error(err))
		}
	}()
	return done
}

// CheckIntegrity verifies the audit chains now, waiting for the check or
// ctx (the gateway calls it at start: the first pass over a big log is the
// long one).
func (c *Console) CheckIntegrity(ctx context.Context) {
	if c.monitor == nil {
		return
	}
	select {
	case <-c.checkIntegrity():
	case <-ctx.Done():
	}
}

// serveIntegrity shows every chain's state. A view starts a check of what
// was appended since the last one; if it is not done within
// Options.IntegrityWait (the first pass over a big log) the page shows
// how far it got and reloads itself.
func (c *Console) serveIntegrity(q *call) {
	v := c.base(q, "integrity")
	iv := &integrityView{}
	v.Integrity = iv
	if c.monitor == nil {
		iv.NoKeys = true
		c.render(q, http.StatusOK, web.T("security.integrity.title"), v)
		return
	}
	select {
	case <-c.checkIntegrity():
	case <-time.After(cmp.Or(c.o.IntegrityWait, DefaultIntegrityWait)):
	case <-q.r.Context().Done():
	}
	iv.Report, iv.Progress = c.monitor.Report(), c.monitor.Progress()
	c.intMu.Lock()
	iv.Failed = c.intFailed
	c.intMu.Unlock()
	c.render(q, http.StatusOK, web.T("security.integrity.title"), v)
}
