// Package audit is meetguard's tamper-evident audit log: the record of who
// got into which meeting, who let them in, under which policy, and whether
// that record can be trusted.
//
// # Writing
//
// [Open] returns a [Log]. Every security-relevant event is one JSON line
// written with [Log.Record] (which reports whether the record is durable) or
// through the ordinary zap logger returned by [Log.Logger], whose core chains
// and writes the same way. Records are hash-chained: each carries its
// sequence number (seq), the hash of the record before it (prev) and its own
// hash, SHA-256 over the exact bytes of the line without the hash member.
// Every Options.CheckpointEvery records or Options.CheckpointInterval, and
// when a file is rotated or the log closed, the log writes an
// "audit.checkpoint" record signed with the audit Ed25519 key, so that a
// holder of the public key alone can detect rewriting and truncation. The
// format is specified in docs/audit.md; [Verify] is its reference verifier.
//
// Writes are group-committed: concurrent Record calls share one write and
// one fsync, and in the default [SyncDurable] mode a call returns only once
// its record is on disk. A crash loses at most records whose Record call had
// not returned; the log then ends in a torn tail, which [Open] cuts off and
// records (event "audit.opened"), and which [Verify] reports as such rather
// than as tampering. When the file cannot be written, Record returns an error
// wrapping [ErrUnavailable] and [Log.Ready] reports why until a retry
// succeeds: callers must fail closed on that error.
//
// # Reading
//
// [Verify] checks a set of (rotated) files; [ReadEntries], [Filter], [Query],
// [EntryWriter], [Follow] and [BuildReport] are the auditor tools behind
// `meetguard audit verify|query|tail|report`. Keys: [GenerateKey],
// [LoadOrCreateKey], [LoadPublicKeys], [WritePublicKey]. Event and member
// names other code relies on are the Event* and Field* constants.
//
// # What it must never do
//
// The log must never write a token, cookie, passcode, password or other
// secret: members whose key names a secret are redacted at every depth, and
// string values shaped like a JWT or a bearer credential are redacted
// whatever their key. It must never acknowledge a record that is not durable
// (in SyncDurable mode), never sign a chain it has not checked, and never
// let callers forge its own "audit.*" records.
package audit
