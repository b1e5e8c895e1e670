package audit

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/zap"
)

// TestRecent_NewestFirstAcrossRotatedFiles: the newest matching records,
// newest first, are exactly the tail of what a forward read of every file
// finds; a record still being written (torn tail) is not one.
func TestRecent_NewestFirstAcrossRotatedFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openTestLog(t, Options{Path: path, MaxFileBytes: 8 << 10, CheckpointEvery: 40})
	ctx := context.Background()
	for i := range 600 {
		room := "r"
		if i%3 == 0 {
			room = "s"
		}
		if err := l.Record(ctx, EventRoomLock, zap.String(FieldRoom, room), zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, path)
	if len(files) < 5 {
		t.Fatalf("only %d files after rotation", len(files))
	}
	f := Filter{Room: "s"}
	var all []*Entry
	for _, e := range readAll(t, files...) {
		if f.Match(e) {
			all = append(all, e)
		}
	}
	slices.Reverse(all)
	for _, limit := range []int{1, 7, 150, 1000} {
		got, err := l.Recent(ctx, f, RecentOptions{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		want := all[:min(limit, len(all))]
		if len(got) != len(want) {
			t.Fatalf("limit %d: %d records, want %d", limit, len(got), len(want))
		}
		for i := range got {
			if got[i].Seq != want[i].Seq {
				t.Fatalf("limit %d: record %d is seq %d, want %d", limit, i, got[i].Seq, want[i].Seq)
			}
		}
	}

	// A half-written record at the end is skipped, not parsed.
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(`{"seq":999999,"event":"room.lock","room":"s"`); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	got, err := ReadRecent(ctx, files, f, RecentOptions{Limit: 1})
	if err != nil || len(got) != 1 || got[0].Seq != all[0].Seq {
		t.Fatalf("with a torn tail: %v, %v; want seq %d", got, err, all[0].Seq)
	}

	// The byte budget bounds the work: a tiny one finds only the newest.
	got, err = ReadRecent(ctx, files, f, RecentOptions{Limit: 100, MaxBytes: 1024})
	if err != nil || len(got) == 0 || len(got) >= 100 || got[0].Seq != all[0].Seq {
		t.Fatalf("with a 1 KiB budget: %d records, %v", len(got), err)
	}
}
