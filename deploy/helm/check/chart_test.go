package check

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/strvals"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The chart is rendered and linted with Helm v4's own packages (the chart
// loader, the template engine, the linter behind `helm lint`), pinned in
// go.mod, so CI needs no helm binary: building one takes several minutes
// on two cores, compiling these packages into this test far less
// (docs/operations.md has the figures).

const chart = "../meetguard"

var update = flag.Bool("update", false, "rewrite testdata/rendered from the chart")

// render is `helm template mg ../meetguard --set s...` in namespace
// default: the values file, each --set over it, the chart's schema, then
// every template. The manifests come out ordered by template name, each
// headed by its source, as helm template prints them.
func render(t testing.TB, sets ...string) (string, error) {
	t.Helper()
	ch, err := loader.Load(chart)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	vals := map[string]any{}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			t.Fatalf("--set %s: %v", s, err)
		}
	}
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "mg", Namespace: "default", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		return "", err
	}
	out, err := engine.Render(ch, top)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(out))
	for name, text := range out {
		if strings.HasSuffix(name, ".yaml") && strings.TrimSpace(text) != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString("---\n# Source: " + name + "\n" + strings.TrimSpace(out[name]) + "\n")
	}
	return b.String(), nil
}

// chartCases are the value combinations values.yaml documents: the
// defaults, more replicas, Sentinel instead of one address, scheduling and
// storage, and the remaining knobs (image, service, extra config, several
// upstreams, no pod annotations). Each one's rendering is committed under
// testdata/rendered, where the gateway's own tests (cmd/meetguard,
// deploy_helm_test.go) read it to validate the meetguard.yaml it carries.
var chartCases = []struct {
	name     string
	replicas int32
	sets     []string
}{
	{"defaults", 3, nil},
	{"five-replicas", 5, []string{"replicaCount=5"}},
	{"sentinel", 3, []string{"redis.addr=", "redis.sentinel.master=mymaster",
		"redis.sentinel.addrs={sentinel-0.redis:26379,sentinel-1.redis:26379}"}},
	{"scheduling-and-storage", 2, []string{"replicaCount=2", "audit.storageClassName=fast", "audit.storageSize=50Gi",
		"nodeSelector.disktype=ssd", "tolerations[0].key=dedicated", "tolerations[0].operator=Exists",
		"tolerations[0].effect=NoSchedule", "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=100",
		"affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=kubernetes.io/hostname"}},
	{"other-knobs", 3, []string{"image.repository=registry.example.org/meetguard", "image.tag=1.2.3", "image.pullPolicy=Always",
		"service.type=NodePort", "service.port=8080", "existingSecret=mg-secrets", "redis.db=2",
		"upstreams[0].name=jitsi", "upstreams[0].url=http://jitsi-web.jitsi.svc:80",
		"upstreams[1].name=livekit", "upstreams[1].url=http://livekit.livekit.svc:7880",
		"config.rooms.permanent[0].id=all-hands", "config.rooms.permanent[0].capacity=200",
		"podAnnotations=null", "podDisruptionBudget.minAvailable=2", "resources.requests.cpu=1"}},
}

// TestChart renders the chart in every combination, decodes every object
// strictly and checks every reference (Parse, Validate), then what the
// cluster recipe promises: N replicas, readiness on /readyz, a disruption
// budget that selects the pods and lets a node drain, secrets only from
// the existing Secret. The rendering must equal the committed one
// (go test -run TestChart -update rewrites it).
func TestChart(t *testing.T) {
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, tc.sets...)
			if err != nil {
				t.Fatalf("rendering: %v", err)
			}
			golden := filepath.Join("testdata", "rendered", tc.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want, err := os.ReadFile(golden); err != nil || string(want) != out {
				t.Errorf("%s differs from a fresh rendering of the chart (%v): run go test -run TestChart -update in deploy/helm/check", golden, err)
			}
			objs, err := Parse(strings.NewReader(out))
			if err != nil {
				t.Fatalf("rendered manifests: %v", err)
			}
			secret := existingSecret(t)
			if name := secretName(tc.sets); name != "" {
				for i := range secret {
					secret[i].Name = name
					secret[i].Value.(*corev1.Secret).Name = name
				}
			}
			for _, e := range Validate(objs, secret...) {
				t.Error(e)
			}
			var sts *appsv1.StatefulSet
			var pdb *policyv1.PodDisruptionBudget
			for _, o := range objs {
				switch v := o.Value.(type) {
				case *appsv1.StatefulSet:
					sts = v
				case *policyv1.PodDisruptionBudget:
					pdb = v
				case *corev1.Secret:
					t.Errorf("the chart renders Secret %s: secrets must come from the existing Secret, never from values", v.Name)
				}
			}
			if sts == nil || pdb == nil {
				t.Fatalf("rendered: StatefulSet %v, PodDisruptionBudget %v", sts != nil, pdb != nil)
			}
			if sts.Spec.Replicas == nil || *sts.Spec.Replicas != tc.replicas {
				t.Errorf("replicas %v, want %d", sts.Spec.Replicas, tc.replicas)
			}
			c := sts.Spec.Template.Spec.Containers[0]
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
			}
			if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
				t.Error("no CPU request")
			}
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
				t.Errorf("the PodDisruptionBudget does not select the gateway's pods (%v)", err)
			}
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() >= int(tc.replicas) {
				t.Errorf("PodDisruptionBudget minAvailable %v with %d replicas: a node drain could never evict a pod", pdb.Spec.MinAvailable, tc.replicas)
			}
		})
	}
}

func secretName(sets []string) string {
	for _, s := range sets {
		if v, ok := strings.CutPrefix(s, "existingSecret="); ok {
			return v
		}
	}
	return ""
}

// TestChart_RefusesBadValues: values the chart must refuse at render time,
// with the reason (its own fail calls and values.schema.json).
func TestChart_RefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"redis.sentinel.master=m"}, "set addr or sentinel.master, not both"},
		{[]string{"redis.addr="}, "set addr or sentinel.master"},
		{[]string{"publicURL=meet.example.org"}, "publicURL"},
		{[]string{"replicaCount=0"}, "replicaCount"},
	} {
		if _, err := render(t, tc.sets...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %v: err = %v, want it to mention %q", tc.sets, err, tc.want)
		}
	}
}

// lintChart is `helm lint --strict dir`: any warning or error fails.
func lintChart(dir string) []string {
	var out []string
	for _, m := range lint.RunAll(dir, nil, "default").Messages {
		if m.Severity >= support.WarningSev {
			out = append(out, m.Error())
		}
	}
	return out
}

// TestChart_Lint runs Helm's linter on the chart, strictly, and on a copy
// broken in ways it must catch, so that a clean result means something.
func TestChart_Lint(t *testing.T) {
	if msgs := lintChart(chart); len(msgs) > 0 {
		t.Fatalf("helm lint --strict:\n%s", strings.Join(msgs, "\n"))
	}
	for _, tc := range []struct {
		name, file, old, new string
	}{
		{"no chart version", "Chart.yaml", "\nversion:", "\nnoversion:"},
		{"template that does not parse", "templates/service.yaml", "{{", "{{ end }}{{"},
		{"value of the wrong type for the schema", "values.yaml", "replicaCount: 3", "replicaCount: three"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyChart(t)
			path := filepath.Join(dir, tc.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(tc.old)) {
				t.Fatalf("%s has no %q", tc.file, tc.old)
			}
			if err := os.WriteFile(path, bytes.Replace(b, []byte(tc.old), []byte(tc.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			if msgs := lintChart(dir); len(msgs) == 0 {
				t.Fatal("lint passed a broken chart")
			}
		})
	}
}

// copyChart copies the chart into a temporary directory named like it
// (lint wants the directory name to be the chart's name).
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "meetguard")
	err := filepath.WalkDir(chart, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chart, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
