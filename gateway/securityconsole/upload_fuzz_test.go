package securityconsole

import (
	"bytes"
	"testing"

	"github.com/meetguard/meetguard/policy"
)

const fuzzBoundary = "XyZzYboundary"

// FuzzWhatIfForm: whatever a client sends as the what-if form, the parser
// answers without panicking, and what it accepts is within the form's
// bounds: a known source, a decision count in range, files of bounded size
// and number, never both a bundle and loose files.
func FuzzWhatIfForm(f *testing.F) {
	seed := func(parts ...string) []byte {
		var b bytes.Buffer
		for _, p := range parts {
			b.WriteString("--" + fuzzBoundary + "\r\n" + p + "\r\n")
		}
		b.WriteString("--" + fuzzBoundary + "--\r\n")
		return b.Bytes()
	}
	f.Add(seed("Content-Disposition: form-data; name=\"source\"\r\n\r\ndisk"))
	f.Add(seed("Content-Disposition: form-data; name=\"n\"\r\n\r\n50",
		"Content-Disposition: form-data; name=\"files\"; filename=\"admission.rego\"\r\nContent-Type: application/octet-stream\r\n\r\npackage meetguard.admission"))
	f.Add(seed("Content-Disposition: form-data; name=\"files\"; filename=\"../../evil.rego\"\r\n\r\nx"))
	f.Add(seed("Content-Disposition: form-data; name=\"files\"; filename=\"b.tar.gz\"\r\n\r\n\x1f\x8b\x08\x00"))
	f.Add(seed("Content-Disposition: attachment\r\n\r\nx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := parseWhatIfForm(bytes.NewReader(body), "multipart/form-data; boundary="+fuzzBoundary)
		if err != nil {
			return
		}
		if form.Source != sourceUpload && form.Source != sourceDisk || form.N < 1 || form.N > MaxWhatIfDecisions {
			t.Fatalf("accepted %+v", form)
		}
		if form.Bundle != nil && form.Files != nil || len(form.Files) > policy.DefaultCandidateFiles {
			t.Fatalf("accepted %d files and a bundle of %d bytes", len(form.Files), len(form.Bundle))
		}
		var total int
		for _, fl := range form.Files {
			total += len(fl.Data)
		}
		if total > policy.DefaultCandidateTotalBytes || len(form.Bundle) > policy.DefaultCandidateFileBytes {
			t.Fatalf("accepted %d bytes of files", total)
		}
		if form.Source == sourceUpload && form.Bundle == nil && len(form.Files) == 0 {
			t.Fatal("accepted an upload without a candidate")
		}
	})
}
