//go:build !unix

package audit

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked is returned by Open when another process writes the same log.
var ErrLocked = errors.New("audit: log is in use by another process")

// lockPath only creates the lock file where advisory locks are unavailable.
func lockPath(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: lock: %w", err)
	}
	return f, nil
}
