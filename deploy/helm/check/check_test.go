package check

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func existingSecret(t testing.TB) []Object {
	t.Helper()
	objs, err := Parse(strings.NewReader(readFile(t, "existing-secret.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestParse_RefusesWhatASchemaRefuses: each case breaks the valid
// rendering in one way a strict schema validator catches; the valid one
// passes, so the refusals are the checker's doing.
func TestParse_RefusesWhatASchemaRefuses(t *testing.T) {
	valid := readFile(t, "valid.yaml")
	if objs, err := Parse(strings.NewReader(valid)); err != nil || len(objs) != 4 {
		t.Fatalf("the valid rendering: %d objects, %v", len(objs), err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown field (a typo)", "  replicas: 3\n", "  replica: 3\n", `unknown field "spec.replica"`},
		{"unknown field deep in the pod", "readOnly: true}\n            - {name: state", "readonly: true}\n            - {name: state", `unknown field "spec.template.spec.containers[0].volumeMounts[1].readonly"`},
		{"wrong type", "  replicas: 3\n", "  replicas: three\n", "cannot unmarshal"},
		{"duplicate key", "  replicas: 3\n", "  replicas: 3\n  replicas: 4\n", "already set"},
		{"kind without a schema", "apiVersion: apps/v1\nkind: StatefulSet", "apiVersion: apps/v1beta1\nkind: StatefulSet", "no schema"},
		{"bad quantity", "cpu: 500m", "cpu: 500q", "quantities must match"},
		{"no kind", "apiVersion: policy/v1\nkind: PodDisruptionBudget\n", "apiVersion: policy/v1\n", "apiVersion and kind are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(valid, tc.old) {
				t.Fatalf("the valid rendering has no %q", tc.old)
			}
			_, err := Parse(strings.NewReader(strings.Replace(valid, tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestValidate_RefusesWhatTheAPIServerOrTheChartsReferencesWould: each case
// decodes fine but would be refused by the API server or would not run
// (a reference to nothing).
func TestValidate_RefusesWhatTheAPIServerOrTheChartsReferencesWould(t *testing.T) {
	valid := readFile(t, "valid.yaml")
	objs, err := Parse(strings.NewReader(valid))
	if err != nil {
		t.Fatal(err)
	}
	if errs := Validate(objs, existingSecret(t)...); len(errs) > 0 {
		t.Fatalf("the valid rendering: %v", errs)
	}
	for _, tc := range []struct {
		name, old, new, want string
		noSecret             bool
	}{
		{"selector not matching the pods", "    metadata:\n      labels:\n        app.kubernetes.io/name: meetguard\n",
			"    metadata:\n      labels:\n        app.kubernetes.io/name: other\n", "selector does not match", false},
		{"name not a DNS subdomain", "  name: mg-meetguard\nspec:\n  replicas", "  name: MG_meetguard\nspec:\n  replicas", "metadata.name", false},
		{"PDB with both bounds", "  minAvailable: 1\n", "  minAvailable: 1\n  maxUnavailable: 1\n", "exactly one of minAvailable", false},
		{"PDB selecting nothing", "  minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: meetguard",
			"  minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: nothing", "matches no workload", false},
		{"Secret key that does not exist", "key: redis-password}", "key: redis-passwd}", `no key "redis-passwd"`, false},
		{"config reading a file the Secret lacks", "/etc/meetguard/secrets/e2ee.key", "/etc/meetguard/secrets/e2ee-key.pem", `no key "e2ee-key.pem"`, false},
		{"Secret that does not exist", "secretName: meetguard", "secretName: meetguard-secrets", `no Secret "meetguard-secrets"`, false},
		{"mount of no volume", "{name: state, mountPath", "{name: data, mountPath", "no such volume", false},
		{"probe on a port the container lacks", "port: admin}", "port: metrics}", `port "metrics" is not one of its ports`, false},
		{"Service to a port no pod has", "targetPort: http", "targetPort: web", `targetPort "web"`, false},
		{"ConfigMap key mounted that does not exist", "subPath: meetguard.yaml", "subPath: config.yaml", `no such key`, false},
		{"no existing Secret at all", "", "", `no Secret "meetguard"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(valid, tc.old) {
				t.Fatalf("the valid rendering has no %q", tc.old)
			}
			objs, err := Parse(strings.NewReader(strings.Replace(valid, tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			var existing []Object
			if !tc.noSecret {
				existing = existingSecret(t)
			}
			errs := errors.Join(Validate(objs, existing...)...)
			if errs == nil || !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", errs, tc.want)
			}
		})
	}
}

// FuzzParse: the checker reads whatever a template renders; it must answer
// with an error, never panic.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"valid.yaml", "existing-secret.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		objs, err := Parse(bytes.NewReader(b))
		if err == nil {
			_ = Validate(objs)
		}
	})
}
