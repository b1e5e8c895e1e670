package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/util"
)

// bundleFiles reads a policy directory as bundle-relative files.
func bundleFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	src, err := readDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range src.files {
		files[f.path] = f.data
	}
	return files
}

// writeBundle writes files as a gzipped tar, with paths laid out the way
// `opa build` does (leading slash).
func writeBundle(t testing.TB, name string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for path, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "/" + path, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// signingKey is a key pair for signing test bundles.
type signingKey struct {
	privPEM, alg string
	pubFile      string
}

func newRSAKey(t testing.TB) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pemKey(t, k, &k.PublicKey, "RS256")
}

func newECKey(t testing.TB) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pemKey(t, k, &k.PublicKey, "ES256")
}

func pemKey(t testing.TB, priv, pub any, alg string) signingKey {
	t.Helper()
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "bundle-key.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return signingKey{privPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})), alg: alg, pubFile: pubFile}
}

// sign adds a .signatures.json covering files, as `opa sign` does.
func (k signingKey) sign(t testing.TB, files map[string][]byte, keyID string) {
	t.Helper()
	hasher, err := bundle.NewSignatureHasher(bundle.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var infos []bundle.FileInfo
	for path, data := range files {
		var v any = data
		if bundle.IsStructuredDoc(path) {
			if err := util.Unmarshal(data, &v); err != nil {
				t.Fatal(err)
			}
		}
		h, err := hasher.HashFile(v)
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, bundle.NewFile(path, hex.EncodeToString(h), string(bundle.SHA256)))
	}
	token, err := bundle.GenerateSignedToken(infos, bundle.NewSigningConfig(k.privPEM, k.alg, ""), keyID)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := json.Marshal(bundle.SignaturesConfig{Signatures: []string{token}})
	files[signaturesFile] = sig
}

func TestBundle_ServesSameRevisionAsItsDirectory(t *testing.T) {
	name := filepath.Join(t.TempDir(), "policy.tar.gz")
	writeBundle(t, name, bundleFiles(t, shippedPolicies))
	fromBundle := newEngine(t, Options{Bundle: name})
	fromDir := newEngine(t, Options{Dir: shippedPolicies})
	if fromBundle.Revision() != fromDir.Revision() {
		t.Errorf("bundle revision %s, directory revision %s", fromBundle.Revision(), fromDir.Revision())
	}
	if d := fromBundle.Decide(context.Background(), staffInput()); !d.Allow || d.Role != RoleParticipant {
		t.Errorf("decision from bundle: %+v", d)
	}
}

func TestBundle_SignatureVerification(t *testing.T) {
	trusted := newRSAKey(t)
	other := newRSAKey(t)
	tests := []struct {
		name    string
		key     signingKey // the key the verifier trusts
		keyID   string     // the key id the verifier expects
		prepare func(t *testing.T, files map[string][]byte)
		wantErr bool
		want    string
	}{
		{name: "signed by the trusted key", key: trusted, prepare: func(t *testing.T, f map[string][]byte) { trusted.sign(t, f, DefaultBundleKeyID) }},
		{name: "signed with ECDSA", key: newECKey(t), prepare: nil}, // set below
		{name: "configured key id", key: trusted, keyID: "policy-2026", prepare: func(t *testing.T, f map[string][]byte) { trusted.sign(t, f, "policy-2026") }},
		{name: "unsigned", key: trusted, prepare: func(*testing.T, map[string][]byte) {}, wantErr: true, want: "not signed"},
		{name: "signed by another key", key: trusted, prepare: func(t *testing.T, f map[string][]byte) { other.sign(t, f, DefaultBundleKeyID) }, wantErr: true, want: "verify"},
		{name: "no key id", key: trusted, prepare: func(t *testing.T, f map[string][]byte) { trusted.sign(t, f, "") }, wantErr: true, want: "no key id"},
		{name: "unknown key id", key: trusted, prepare: func(t *testing.T, f map[string][]byte) { trusted.sign(t, f, "someone-else") }, wantErr: true, want: "someone-else"},
		{name: "rule changed after signing", key: trusted, prepare: func(t *testing.T, f map[string][]byte) {
			trusted.sign(t, f, DefaultBundleKeyID)
			f["admission.rego"] = append(f["admission.rego"], "\n# harmless?\n"...)
		}, wantErr: true, want: "admission.rego"},
		{name: "data changed after signing", key: trusted, prepare: func(t *testing.T, f map[string][]byte) {
			trusted.sign(t, f, DefaultBundleKeyID)
			f["data.json"] = bytes.Replace(f["data.json"], []byte(`"meeting-hosts"`), []byte(`"everyone"`), 1)
		}, wantErr: true, want: "data.json"},
		{name: "file added after signing", key: trusted, prepare: func(t *testing.T, f map[string][]byte) {
			trusted.sign(t, f, DefaultBundleKeyID)
			f["backdoor.rego"] = []byte("package meetguard.backdoor\n\nx := 1\n")
		}, wantErr: true, want: "backdoor.rego"},
		{name: "file removed after signing", key: trusted, prepare: func(t *testing.T, f map[string][]byte) {
			trusted.sign(t, f, DefaultBundleKeyID)
			delete(f, "config_check_test.rego")
		}, wantErr: true, want: "config_check_test.rego"},
		{name: "schema changed after signing", key: trusted, prepare: func(t *testing.T, f map[string][]byte) {
			trusted.sign(t, f, DefaultBundleKeyID)
			f["schema/input.json"] = bytes.Replace(f["schema/input.json"], []byte(`"additionalProperties": false`), []byte(`"additionalProperties": true`), 1)
		}, wantErr: true, want: "schema/input.json"},
	}
	tests[1].prepare = func(t *testing.T, f map[string][]byte) { tests[1].key.sign(t, f, DefaultBundleKeyID) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := bundleFiles(t, shippedPolicies)
			tt.prepare(t, files)
			name := filepath.Join(t.TempDir(), "policy.tar.gz")
			writeBundle(t, name, files)
			e, err := New(context.Background(), Options{Bundle: name, BundleVerificationKey: tt.key.pubFile, BundleVerificationKeyID: tt.keyID, Timeout: time.Minute})
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if !e.Decide(context.Background(), staffInput()).Allow {
					t.Error("signed bundle does not decide")
				}
				return
			}
			if !errors.Is(err, ErrBundleSignature) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBundleSignature mentioning %q", err, tt.want)
			}
		})
	}
}

func TestBundle_SignedDirectoryIsVerifiedToo(t *testing.T) {
	key := newRSAKey(t)
	dir := copyShipped(t)
	if _, err := New(context.Background(), Options{Dir: dir, BundleVerificationKey: key.pubFile}); !errors.Is(err, ErrBundleSignature) {
		t.Fatalf("unsigned directory with verification on: err = %v", err)
	}
	files := bundleFiles(t, dir)
	key.sign(t, files, DefaultBundleKeyID)
	writeFiles(t, dir, map[string]string{signaturesFile: string(files[signaturesFile])})
	newEngine(t, Options{Dir: dir, BundleVerificationKey: key.pubFile})
}

// A rejected bundle on reload leaves the signed revision serving.
func TestBundle_ReloadRefusesTamperedBundle(t *testing.T) {
	key := newRSAKey(t)
	files := bundleFiles(t, shippedPolicies)
	key.sign(t, files, DefaultBundleKeyID)
	name := filepath.Join(t.TempDir(), "policy.tar.gz")
	writeBundle(t, name, files)
	e := newEngine(t, Options{Bundle: name, BundleVerificationKey: key.pubFile})
	rev := e.Revision()

	files["data.json"] = bytes.Replace(files["data.json"], []byte(`"staff_domains": ["example.com"]`), []byte(`"staff_domains": ["evil.test"]`), 1)
	writeBundle(t, name, files)
	if err := e.Reload(context.Background()); !errors.Is(err, ErrBundleSignature) {
		t.Fatalf("Reload = %v, want ErrBundleSignature", err)
	}
	if e.Revision() != rev {
		t.Error("tampered bundle is serving")
	}
}

func TestBundle_HostileArchives(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, name string)
		kind  error
	}{
		{name: "not gzip", write: func(t *testing.T, name string) {
			writeFiles(t, filepath.Dir(name), map[string]string{filepath.Base(name): "package x"})
		}, kind: ErrPolicySource},
		{name: "gzip but not tar", write: func(t *testing.T, name string) {
			var b bytes.Buffer
			gz := gzip.NewWriter(&b)
			gz.Write([]byte("definitely not a tar archive, but long enough to need a header block ............................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"))
			gz.Close()
			os.WriteFile(name, b.Bytes(), 0o644)
		}, kind: ErrPolicySource},
		{name: "file over the size limit", write: func(t *testing.T, name string) {
			writeBundle(t, name, map[string][]byte{"big.rego": bytes.Repeat([]byte("#"), maxPolicyFileBytes+1)})
		}, kind: ErrPolicySource},
		{name: "path escaping the bundle stays inside", write: func(t *testing.T, name string) {
			writeBundle(t, name, map[string][]byte{"../../outside.rego": []byte("package meetguard.admission\n\ndecision := {\"allow\": false}\n")})
		}, kind: nil},
		{name: "empty archive", write: func(t *testing.T, name string) { writeBundle(t, name, map[string][]byte{}) }, kind: ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "policy.tar.gz")
			tt.write(t, name)
			_, err := New(context.Background(), Options{Bundle: name})
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
		})
	}
}

func FuzzReadBundle(f *testing.F) {
	var buf bytes.Buffer
	name := filepath.Join(f.TempDir(), "seed.tar.gz")
	writeBundle(f, name, map[string][]byte{
		"p.rego":            []byte("package meetguard.admission\n\ndecision := {\"allow\": false}\n"),
		"data.json":         []byte(`{"meetguard": {"config": {}}}`),
		"schema/input.json": []byte(`{"type": "object"}`),
	})
	seed, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	buf.Write(seed)
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Add([]byte("not a bundle"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := readBundle("fuzz.tar.gz", bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrPolicySource) {
				t.Fatalf("error %v is not ErrPolicySource", err)
			}
			return
		}
		for _, f := range src.files {
			if strings.HasPrefix(f.path, "/") || strings.Contains("/"+f.path+"/", "/../") {
				t.Fatalf("path %q escapes the bundle", f.path)
			}
		}
		_ = src.hash()
		_ = src.checkJSON()
		_, _ = schemaSet(src)
	})
}
