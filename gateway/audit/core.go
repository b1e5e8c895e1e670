package audit

import (
	"context"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Logger returns a zap logger whose entries are audit records: the message
// is the event name, the fields are its members, and the level is ignored
// (every entry is recorded). Writes go through the same chain, redaction
// and group commit as Record and block until durable in SyncDurable mode.
// zap cannot return a write error to the caller, so failures go to the
// operational logger: use Record where the caller must fail closed.
func (l *Log) Logger() *zap.Logger {
	return zap.New(&chainCore{log: l}, zap.ErrorOutput(zapcore.AddSync(errorOutput{l.logger})))
}

// chainCore is the zapcore.Core behind Logger.
type chainCore struct {
	log    *Log
	fields []zapcore.Field // from With
}

func (c *chainCore) Enabled(zapcore.Level) bool { return true }

func (c *chainCore) With(fields []zapcore.Field) zapcore.Core {
	all := make([]zapcore.Field, 0, len(c.fields)+len(fields))
	return &chainCore{log: c.log, fields: append(append(all, c.fields...), fields...)}
}

func (c *chainCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(ent, c)
}

func (c *chainCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	if len(c.fields) > 0 {
		fields = append(append(make([]zapcore.Field, 0, len(c.fields)+len(fields)), c.fields...), fields...)
	}
	return c.log.write(context.Background(), ent.Message, fields)
}

func (c *chainCore) Sync() error { return c.log.Sync() }

// errorOutput sends zap's internal write errors to the operational log.
type errorOutput struct{ logger *zap.Logger }

func (e errorOutput) Write(p []byte) (int, error) {
	e.logger.Error("audit record not written", zap.String("detail", string(p)))
	return len(p), nil
}
