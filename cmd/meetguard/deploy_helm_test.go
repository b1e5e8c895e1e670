package main_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/meetguard/meetguard/gateway/config"
)

// The chart's renderings, one per value combination values.yaml
// documents, are committed by deploy/helm/check, whose TestChart renders
// the chart with Helm v4's own packages, strictly decodes and lints it, and
// fails when a committed rendering differs from a fresh one. Here the
// gateway checks what only it can: that each rendering's meetguard.yaml is
// a config it accepts.
const rendered = "../../deploy/helm/check/testdata/rendered"

type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec yaml.Node         `yaml:"spec"`
}

// render reads the committed rendering of one value combination.
func render(t *testing.T, name string) []manifest {
	t.Helper()
	out, err := os.ReadFile(filepath.Join(rendered, name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ms []manifest
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Kind != "" {
			ms = append(ms, m)
		}
	}
	return ms
}

// TestHelmChart_Template checks the default rendering for what the
// cluster recipe promises: N replicas, readiness on /readyz, a disruption
// budget, a hardened container, secrets only from a Secret, and a gateway
// config that `meetguard config validate` accepts.
func TestHelmChart_Template(t *testing.T) {
	ms := render(t, "defaults")
	kinds := map[string]manifest{}
	for _, m := range ms {
		kinds[m.Kind] = m
	}
	for _, k := range []string{"StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget"} {
		if _, ok := kinds[k]; !ok {
			t.Errorf("no %s rendered", k)
		}
	}
	var sts struct {
		Replicas int `yaml:"replicas"`
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []struct {
					ReadinessProbe struct {
						HTTPGet struct {
							Path string `yaml:"path"`
						} `yaml:"httpGet"`
					} `yaml:"readinessProbe"`
					SecurityContext struct {
						ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
						Capabilities             struct {
							Drop []string `yaml:"drop"`
						} `yaml:"capabilities"`
					} `yaml:"securityContext"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
					} `yaml:"resources"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	}
	s := kinds["StatefulSet"].Spec
	if err := s.Decode(&sts); err != nil {
		t.Fatal(err)
	}
	if sts.Replicas != 3 {
		t.Errorf("replicas = %d, want 3", sts.Replicas)
	}
	if !sts.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Error("pod may run as root")
	}
	if len(sts.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(sts.Template.Spec.Containers))
	}
	c := sts.Template.Spec.Containers[0]
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe path %q, want /readyz", c.ReadinessProbe.HTTPGet.Path)
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation || strings.Join(c.SecurityContext.Capabilities.Drop, ",") != "ALL" {
		t.Errorf("container not hardened: %+v", c.SecurityContext)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("no resource requests: %v", c.Resources.Requests)
	}

	// The config: valid for the gateway, secrets by file or ${VAR} only.
	cfgText := kinds["ConfigMap"].Data["meetguard.yaml"]
	for _, secretish := range []string{"client_secret:", "secret:", "ticket_key:", "password: "} {
		for _, line := range strings.Split(cfgText, "\n") {
			if strings.Contains(line, secretish) && !strings.Contains(line, "${") && !strings.Contains(line, "_file") {
				t.Errorf("config carries a secret inline: %q", line)
			}
		}
	}
	validateRendered(t, cfgText)
}

// validateRendered runs config validation on a rendered meetguard.yaml,
// with the Secret's files and the state directory pointed at temporary
// stand-ins.
func validateRendered(t *testing.T, cfgText string) {
	t.Helper()
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"oidc-client-secret", "session-secret", "ticket-key"} {
		if err := os.WriteFile(filepath.Join(secrets, f), bytes.Repeat([]byte("s"), 48), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keyOut, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519").Output()
	if err != nil {
		t.Skipf("openssl for test keys: %v", err)
	}
	for _, f := range []string{"assertion.key", "e2ee.key"} {
		if err := os.WriteFile(filepath.Join(secrets, f), keyOut, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.ReplaceAll(cfgText, "/etc/meetguard/secrets", secrets)
	text = strings.ReplaceAll(text, "/var/lib/meetguard", dir)
	path := filepath.Join(dir, "meetguard.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_PASSWORD": "", "SENTINEL_PASSWORD": ""}
	if _, err := config.LoadFile(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatalf("rendered meetguard.yaml does not validate:\n%v\n---\n%s", err, text)
	}
}

// TestHelmChart_Sentinel: with Sentinel the config names the Sentinels.
// (Asking for both an address and Sentinel, or neither, is refused at
// render time: deploy/helm/check's TestChart_RefusesBadValues.)
func TestHelmChart_Sentinel(t *testing.T) {
	found := false
	for _, m := range render(t, "sentinel") {
		if m.Kind == "ConfigMap" {
			found = true
			if !strings.Contains(m.Data["meetguard.yaml"], "master: mymaster") {
				t.Errorf("sentinel not in config:\n%s", m.Data["meetguard.yaml"])
			}
		}
	}
	if !found {
		t.Fatal("no ConfigMap rendered")
	}
}

// TestHelmChart_EveryRenderingIsAValidConfig: each committed value
// combination's meetguard.yaml loads (extra config merged in, other
// upstreams, Sentinel), so no documented value breaks the gateway's start.
func TestHelmChart_EveryRenderingIsAValidConfig(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(rendered, "*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("renderings: %v %v", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			n := 0
			for _, m := range render(t, name) {
				if m.Kind == "ConfigMap" && m.Data["meetguard.yaml"] != "" {
					n++
					validateRendered(t, m.Data["meetguard.yaml"])
				}
			}
			if n != 1 {
				t.Fatalf("%d gateway configs rendered, want 1", n)
			}
		})
	}
}
