package audit

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

const crashChildEnv = "MEETGUARD_AUDIT_CRASH_CHILD"

// TestCrashChild is the process TestCrash kills: it writes records from
// several goroutines as fast as it can and prints "ack ID" for each one
// whose Record returned nil. It does nothing unless started by TestCrash.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestCrash_SIGKILLLosesOnlyUnacknowledgedRecords")
	}
	l, err := Open(context.Background(), Options{
		Path: path, SigningKey: testKey(), CheckpointEvery: 50, MaxFileBytes: 256 << 10,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	run := os.Getenv(crashChildEnv + "_RUN")
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("%s-%d-%d", run, w, i)
				fields := []zap.Field{zap.String("id", id), zap.String(FieldRoom, "load"), zap.String(FieldDecision, DecisionAllow)}
				if err := l.Record(context.Background(), EventAdmissionDecision, fields...); err != nil {
					fmt.Fprintln(os.Stderr, "record:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %s\n", id)
				out.Flush() // the ack must leave the process before the next record
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestCrash_SIGKILLLosesOnlyUnacknowledgedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	acked := map[string]bool{}
	torn := 0
	const runs = 8
	for run := range runs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, fmt.Sprintf("%s_RUN=%d", crashChildEnv, run))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		first := make(chan struct{})
		var once sync.Once
		var runAcks []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			r := bufio.NewReader(stdout)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return // a line cut by the kill is not an acknowledgement
				}
				if id, ok := strings.CutPrefix(strings.TrimSpace(line), "ack "); ok {
					runAcks = append(runAcks, id)
					once.Do(func() { close(first) })
				}
			}
		}()
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("run %d: child acknowledged nothing in 30s; stderr: %s", run, stderr.String())
		}
		time.Sleep(time.Duration(20+rand.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		cmd.Wait()
		if strings.Contains(stderr.String(), "record:") || strings.Contains(stderr.String(), "open:") {
			t.Fatalf("run %d: child failed: %s", run, stderr.String())
		}
		for _, id := range runAcks {
			acked[id] = true
		}

		files := logFiles(t, path)
		res := verifyFiles(t, files, VerifyOptions{})
		if res.Problem != nil {
			t.Fatalf("run %d: log killed mid-write does not verify: %v", run, res.Problem)
		}
		if res.Torn != nil {
			torn++
		}
		inLog := map[string]bool{}
		if _, err := ReadEntries(context.Background(), files, func(e *Entry) error {
			if id := e.Str("id"); id != "" {
				inLog[id] = true
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for id := range acked {
			if !inLog[id] {
				t.Fatalf("run %d: acknowledged record %s is missing from the log", run, id)
			}
		}
		t.Logf("run %d: %d acknowledged (%d in total), %d records in the log, torn tail: %v", run, len(runAcks), len(acked), len(inLog), res.Torn != nil)
	}
	// Linux finishes a write(2) to the page cache before a SIGKILL takes
	// effect, so torn tails are rare here (power loss makes them);
	// TestOpen_CutsTornTailAndRecordsIt covers that path.
	t.Logf("%d of %d kills left a torn tail", torn, runs)
	if len(acked) == 0 {
		t.Fatal("no record was acknowledged")
	}
}
