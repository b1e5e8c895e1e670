//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked is returned by Open when another process writes the same log.
var ErrLocked = errors.New("audit: log is in use by another process")

// lockPath takes an exclusive advisory lock on path (created if missing),
// so that two gateways never interleave one chain. The kernel drops the
// lock when the process dies, kill -9 included.
func lockPath(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("audit: lock %s: %w", path, err)
	}
	return f, nil
}
