package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
)

// SyncMode says when Record returns.
type SyncMode int

const (
	// SyncDurable (the default): Record returns once its record is written
	// and fsynced, sharing the fsync with concurrent callers (group commit).
	SyncDurable SyncMode = iota
	// SyncAsync: Record returns once the record is sequenced in memory; the
	// background committer writes and fsyncs it shortly after. A crash can
	// lose records whose Record call already returned nil.
	SyncAsync
)

func (m SyncMode) String() string {
	switch m {
	case SyncDurable:
		return "durable"
	case SyncAsync:
		return "async"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// UnmarshalText accepts "durable" (or "") and "async", for config files.
func (m *SyncMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "", "durable":
		*m = SyncDurable
	case "async":
		*m = SyncAsync
	default:
		return fmt.Errorf("audit sync mode %q: want durable or async", b)
	}
	return nil
}

// MarshalText is the inverse of UnmarshalText.
func (m SyncMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Defaults for zero Options fields.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 10 * time.Second
	DefaultMaxFileBytes       = 64 << 20
	DefaultMaxFileAge         = 24 * time.Hour
	DefaultRetryInterval      = time.Second
)

// Options configure Open.
type Options struct {
	// Path is the active log file. Rotated files are kept beside it as
	// STEM.SEQ.EXT (audit.log → audit.000000000001.log, SEQ being the first
	// record's seq), and Open writes the public key beside it as Path+".pub".
	Path string
	// Node names the gateway node that writes this log (config node.id).
	// Every record carries it as its "node" member, so that the logs of
	// several nodes can be verified chain by chain and read as one story
	// (GroupByNode, ReadMerged). It must be ValidNodeID and unique per
	// node. Default "": no node member (a single gateway).
	Node string
	// SigningKey signs checkpoints. Required. Keep it apart from every other
	// key (LoadOrCreateKey).
	SigningKey ed25519.PrivateKey
	// TrustedKeys are earlier signing keys whose checkpoints Open accepts
	// at the end of an existing log (after the audit key was changed).
	// Open refuses to extend a log whose tail is not covered by a
	// checkpoint of SigningKey or of one of these: it would otherwise sign
	// a chain anyone could have written. Never take them from the .pub
	// file beside the log: whoever can rewrite the log can rewrite that.
	TrustedKeys []ed25519.PublicKey
	// CheckpointEvery is the most records between two checkpoints
	// (default 1000). Verify enforces it, so it also bounds how many
	// records can be cut from the end of a log without trace.
	CheckpointEvery int
	// CheckpointInterval: a checkpoint is written when records are this old
	// without one (default 10s).
	CheckpointInterval time.Duration
	// Sync: SyncDurable (default) or SyncAsync.
	Sync SyncMode
	// MaxFileBytes and MaxFileAge rotate the active file once it reaches
	// either (defaults 64 MiB and 24h; negative disables). The chain
	// continues in the new file.
	MaxFileBytes int64
	MaxFileAge   time.Duration
	// HashedFields are member keys (at any depth, case-insensitive) written
	// as HashIdentity(value) instead of in clear, e.g. "email".
	HashedFields []string
	// Mirror, if set, receives a copy of every durable record as JSON lines
	// (e.g. os.Stdout for a SIEM). A slow mirror never blocks the log: when
	// it falls behind, copies are dropped and counted in the operational log.
	Mirror io.Writer
	// Logger receives the audit log's own operational errors (default: none).
	Logger *zap.Logger
	// Clock stamps records (default time.Now).
	Clock func() time.Time
	// RetryInterval is how often a failed log retries writing (default 1s).
	RetryInterval time.Duration
	// StrictSchema makes Record refuse (ErrSchema) a record whose members
	// are not exactly its event's documented ones (Schema). Tests and
	// `meetguard dev` set it so that drift fails loudly; otherwise the
	// record is written and the drift logged as a warning, so that a
	// naming slip never stops an admission.
	StrictSchema bool

	// openFile opens the active file (flag has O_CREATE) and the
	// descriptors that fsync it (flag without O_CREATE); tests replace it
	// to inject faults from real devices (/dev/full).
	openFile func(name string, flag int, perm os.FileMode) (file, error)
	// syncsInFlight is how many batches may be written and fsyncing at
	// once (default defaultSyncsInFlight; 1 is the old one-at-a-time
	// group commit). Benchmarks and tests set it.
	syncsInFlight int
	// syncBatch fsyncs f, a descriptor of the active file, after batch was
	// written to it (default f.Sync()). Tests replace it to hold or fail
	// the fsync of the batch holding chosen records: a failing disk's
	// verdict is a fault a real file cannot be made to show on demand.
	syncBatch func(f file, batch []byte) error
}

// file is what the log needs of its active file.
type file interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
	// Stat tells whether two descriptors are one file (os.SameFile).
	Stat() (os.FileInfo, error)
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Path == "" {
		errs = append(errs, errors.New("audit: Options.Path is required"))
	}
	if len(o.SigningKey) != ed25519.PrivateKeySize {
		errs = append(errs, errors.New("audit: Options.SigningKey is required (an Ed25519 private key)"))
	}
	if o.CheckpointEvery < 0 || o.CheckpointInterval < 0 || o.RetryInterval < 0 {
		errs = append(errs, errors.New("audit: CheckpointEvery, CheckpointInterval and RetryInterval must not be negative"))
	}
	if o.Node != "" {
		if err := ValidNodeID(o.Node); err != nil {
			errs = append(errs, fmt.Errorf("audit: Options.Node: %w", err))
		}
	}
	if o.Sync != SyncDurable && o.Sync != SyncAsync {
		errs = append(errs, fmt.Errorf("audit: Options.Sync: unknown mode %d", int(o.Sync)))
	}
	if err := errors.Join(errs...); err != nil {
		return o, err
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxFileAge == 0 {
		o.MaxFileAge = DefaultMaxFileAge
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.syncsInFlight <= 0 {
		o.syncsInFlight = defaultSyncsInFlight
	}
	if o.syncBatch == nil {
		o.syncBatch = func(f file, _ []byte) error { return f.Sync() }
	}
	if o.openFile == nil {
		o.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
			return os.OpenFile(name, flag, perm)
		}
	}
	return o, nil
}

// MaxNodeIDLen is the longest node id.
const MaxNodeIDLen = 64

// ValidNodeID checks a node id: 1 to 64 of A-Z a-z 0-9 . _ - (a host name
// fits). The id is written into every record unescaped, so nothing else is
// allowed.
func ValidNodeID(id string) error {
	if id == "" || len(id) > MaxNodeIDLen {
		return fmt.Errorf("node id %q: want 1 to %d characters", id, MaxNodeIDLen)
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("node id %q: only A-Z a-z 0-9 . _ - are allowed", id)
		}
	}
	return nil
}
