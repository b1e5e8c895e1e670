// Package check validates rendered Kubernetes manifests the way a schema
// validator (kubeconform -strict) does, without fetching schemas from the
// network: each object is decoded strictly into its typed k8s.io/api struct
// (unknown fields, duplicate keys and wrong types refused, kinds it has no
// type for refused), then checked for what the API server would refuse but
// the types cannot say (names, required fields, selectors that must match
// their pods, probes with one handler), and every reference between objects
// (ConfigMaps, Secrets and their keys, volumes, named ports) must resolve.
//
// It is a separate Go module so that k8s.io/api stays out of the gateway's
// dependencies; its tests render and lint the chart with Helm v4's own
// packages (chart_test.go), and `make test` runs them.
package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest.
type Object struct {
	APIVersion, Kind, Name string
	// Doc is the manifest's position in its stream (0 for the first).
	Doc int
	// Value is a pointer to the typed struct (*appsv1.StatefulSet, ...).
	Value any
}

func (o Object) String() string { return fmt.Sprintf("%s %s (document %d)", o.Kind, o.Name, o.Doc+1) }

// kinds are the API types this checker knows; any other is refused, as a
// strict schema validator refuses a kind it has no schema for.
var kinds = map[string]func() any{
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"v1/PersistentVolumeClaim":                 func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/StatefulSet":                      func() any { return &appsv1.StatefulSet{} },
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/Ingress":             func() any { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return &networkingv1.NetworkPolicy{} },
	"autoscaling/v2/HorizontalPodAutoscaler":   func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return &rbacv1.RoleBinding{} },
}

// maxDocument bounds one manifest (the API server's own limit is about 1.5 MiB for most objects; a ConfigMap 1 MiB).
const maxDocument = 3 << 20

// Parse decodes every manifest of a YAML stream (documents separated by
// ---), strictly. Empty documents (a template that rendered nothing) are
// skipped. The first error names its document.
func Parse(r io.Reader) ([]Object, error) {
	rd := k8syaml.NewYAMLReader(bufio.NewReaderSize(r, 64<<10))
	var out []Object
	for doc := 0; ; doc++ {
		b, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc+1, err)
		}
		if len(b) > maxDocument {
			return nil, fmt.Errorf("document %d: %d bytes, more than %d", doc+1, len(b), maxDocument)
		}
		o, err := decode(b)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc+1, err)
		}
		if o == nil {
			continue
		}
		o.Doc = doc
		out = append(out, *o)
	}
}

func decode(b []byte) (*Object, error) {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
	}
	js, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	if err := yaml.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if head.APIVersion == "" || head.Kind == "" {
		return nil, errors.New("apiVersion and kind are required")
	}
	mk, ok := kinds[head.APIVersion+"/"+head.Kind]
	if !ok {
		return nil, fmt.Errorf("%s %s: no schema for this kind", head.APIVersion, head.Kind)
	}
	// As the API server decodes: case-sensitive field names (encoding/json
	// would take "readonly" for "readOnly"), every unknown or duplicate
	// field refused.
	v := mk()
	strict, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, errors.Join(strict...))
	}
	return &Object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Value: v}, nil
}

// Validate checks each object and the references between them. existing
// are objects the chart expects to be in the namespace already (the Secret
// an operator creates as values.yaml says); references to them resolve too.
func Validate(objs []Object, existing ...Object) []error {
	var errs []error
	add := func(o Object, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
	}
	all := append(append([]Object{}, objs...), existing...)
	seen := map[string]bool{}
	for _, o := range objs {
		key := o.Kind + "/" + o.Name
		if seen[key] {
			add(o, "rendered twice")
		}
		seen[key] = true
		meta := metaOf(o.Value)
		for _, msg := range validation.IsDNS1123Subdomain(meta.Name) {
			add(o, "metadata.name %q: %s", meta.Name, msg)
		}
		for k, v := range meta.Labels {
			for _, msg := range validation.IsQualifiedName(k) {
				add(o, "label key %q: %s", k, msg)
			}
			for _, msg := range validation.IsValidLabelValue(v) {
				add(o, "label %s value %q: %s", k, v, msg)
			}
		}
		for k := range meta.Annotations {
			for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
				add(o, "annotation key %q: %s", k, msg)
			}
		}
		switch v := o.Value.(type) {
		case *appsv1.StatefulSet:
			if v.Spec.ServiceName != "" && !has(all, "Service", v.Spec.ServiceName) {
				add(o, "serviceName %q: no such Service", v.Spec.ServiceName)
			}
			claims := map[string]bool{}
			for _, c := range v.Spec.VolumeClaimTemplates {
				claims[c.Name] = true
				if len(c.Spec.AccessModes) == 0 {
					add(o, "volumeClaimTemplate %s: no accessModes", c.Name)
				}
				if _, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
					add(o, "volumeClaimTemplate %s: no storage request", c.Name)
				}
			}
			workload(o, v.Spec.Replicas, v.Spec.Selector, v.Spec.Template, claims, all, add)
		case *appsv1.Deployment:
			workload(o, v.Spec.Replicas, v.Spec.Selector, v.Spec.Template, nil, all, add)
		case *policyv1.PodDisruptionBudget:
			if (v.Spec.MinAvailable == nil) == (v.Spec.MaxUnavailable == nil) {
				add(o, "exactly one of minAvailable and maxUnavailable is required")
			}
			if v.Spec.Selector == nil || len(v.Spec.Selector.MatchLabels)+len(v.Spec.Selector.MatchExpressions) == 0 {
				add(o, "no selector: it would select nothing")
			} else if len(podsSelectedBy(all, v.Spec.Selector)) == 0 {
				add(o, "its selector matches no workload's pods")
			}
		case *corev1.Service:
			if len(v.Spec.Ports) == 0 {
				add(o, "no ports")
			}
			sel := &metav1.LabelSelector{MatchLabels: v.Spec.Selector}
			pods := podsSelectedBy(all, sel)
			if len(v.Spec.Selector) > 0 && len(pods) == 0 {
				add(o, "its selector matches no workload's pods")
			}
			for _, p := range v.Spec.Ports {
				if p.Port < 1 || p.Port > 65535 {
					add(o, "port %s: %d out of range", p.Name, p.Port)
				}
				if p.TargetPort.Type == intstr.String {
					for _, pod := range pods {
						if !namedPort(pod, p.TargetPort.StrVal) {
							add(o, "port %s: targetPort %q is no container port of the pods it selects", p.Name, p.TargetPort.StrVal)
						}
					}
				}
			}
		}
	}
	return errs
}

// workload checks a pod-owning object.
func workload(o Object, replicas *int32, sel *metav1.LabelSelector, t corev1.PodTemplateSpec, claims map[string]bool,
	all []Object, add func(Object, string, ...any)) {
	if replicas != nil && *replicas < 0 {
		add(o, "replicas %d", *replicas)
	}
	if sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		add(o, "selector is required")
	} else if s, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		add(o, "selector: %v", err)
	} else if !s.Matches(labels.Set(t.Labels)) {
		add(o, "selector does not match the pod template's labels")
	}
	spec := t.Spec
	if len(spec.Containers) == 0 {
		add(o, "no containers")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		if _, dup := volumes[v.Name]; dup {
			add(o, "volume %s defined twice", v.Name)
		}
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			if !has(all, "ConfigMap", v.ConfigMap.Name) && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
				add(o, "volume %s: no ConfigMap %q", v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if !has(all, "Secret", v.Secret.SecretName) && (v.Secret.Optional == nil || !*v.Secret.Optional) {
				add(o, "volume %s: no Secret %q", v.Name, v.Secret.SecretName)
			}
		}
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Name == "" || c.Image == "" {
			add(o, "container %q: name and image are required", c.Name)
		}
		for _, p := range c.Ports {
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				add(o, "container %s port %s: %d out of range", c.Name, p.Name, p.ContainerPort)
			}
		}
		for name, pr := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
			if pr == nil {
				continue
			}
			n := 0
			for _, h := range []bool{pr.HTTPGet != nil, pr.TCPSocket != nil, pr.Exec != nil, pr.GRPC != nil} {
				if h {
					n++
				}
			}
			if n != 1 {
				add(o, "container %s %s: %d handlers, want exactly one", c.Name, name, n)
			}
			if pr.HTTPGet != nil && pr.HTTPGet.Port.Type == intstr.String && !containerPort(c, pr.HTTPGet.Port.StrVal) {
				add(o, "container %s %s: port %q is not one of its ports", c.Name, name, pr.HTTPGet.Port.StrVal)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil && !keyExists(all, "Secret", r.Name, r.Key) && (r.Optional == nil || !*r.Optional) {
				add(o, "container %s env %s: no key %q in Secret %q", c.Name, e.Name, r.Key, r.Name)
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !keyExists(all, "ConfigMap", r.Name, r.Key) && (r.Optional == nil || !*r.Optional) {
				add(o, "container %s env %s: no key %q in ConfigMap %q", c.Name, e.Name, r.Key, r.Name)
			}
		}
		for _, m := range c.VolumeMounts {
			v, ok := volumes[m.Name]
			if !ok && !claims[m.Name] {
				add(o, "container %s mounts %s: no such volume", c.Name, m.Name)
				continue
			}
			switch {
			case v.ConfigMap != nil && m.SubPath != "" && !keyExists(all, "ConfigMap", v.ConfigMap.Name, m.SubPath):
				add(o, "container %s mounts key %q of ConfigMap %q, which has no such key", c.Name, m.SubPath, v.ConfigMap.Name)
			case v.Secret != nil:
				// Files the rendered configuration reads from this mount
				// must be keys of the Secret.
				for _, key := range filesUnder(all, strings.TrimSuffix(m.MountPath, "/")+"/") {
					if !keyExists(all, "Secret", v.Secret.SecretName, key) {
						add(o, "the configuration reads %s/%s, but Secret %q has no key %q", m.MountPath, key, v.Secret.SecretName, key)
					}
				}
			}
		}
	}
}

func metaOf(v any) metav1.ObjectMeta {
	switch o := v.(type) {
	case interface{ GetObjectMeta() metav1.Object }:
		m := o.GetObjectMeta()
		return metav1.ObjectMeta{Name: m.GetName(), Labels: m.GetLabels(), Annotations: m.GetAnnotations()}
	}
	return metav1.ObjectMeta{}
}

func has(all []Object, kind, name string) bool {
	for _, o := range all {
		if o.Kind == kind && o.Name == name {
			return true
		}
	}
	return false
}

func keyExists(all []Object, kind, name, key string) bool {
	for _, o := range all {
		if o.Kind != kind || o.Name != name {
			continue
		}
		switch v := o.Value.(type) {
		case *corev1.Secret:
			_, a := v.Data[key]
			_, b := v.StringData[key]
			return a || b
		case *corev1.ConfigMap:
			_, a := v.Data[key]
			_, b := v.BinaryData[key]
			return a || b
		}
	}
	return false
}

// podsSelectedBy returns the pod templates of the workloads sel matches.
func podsSelectedBy(all []Object, sel *metav1.LabelSelector) []corev1.PodSpec {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	var out []corev1.PodSpec
	for _, o := range all {
		var t *corev1.PodTemplateSpec
		switch v := o.Value.(type) {
		case *appsv1.StatefulSet:
			t = &v.Spec.Template
		case *appsv1.Deployment:
			t = &v.Spec.Template
		}
		if t != nil && s.Matches(labels.Set(t.Labels)) {
			out = append(out, t.Spec)
		}
	}
	return out
}

func namedPort(pod corev1.PodSpec, name string) bool {
	for _, c := range pod.Containers {
		if containerPort(c, name) {
			return true
		}
	}
	return false
}

func containerPort(c corev1.Container, name string) bool {
	for _, p := range c.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// filesUnder returns the names of the files under dir that the rendered
// ConfigMaps mention (a path in a configuration file).
func filesUnder(all []Object, dir string) []string {
	var out []string
	for _, o := range all {
		cm, ok := o.Value.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		for _, text := range cm.Data {
			for rest := text; ; {
				i := strings.Index(rest, dir)
				if i < 0 {
					break
				}
				rest = rest[i+len(dir):]
				end := strings.IndexFunc(rest, func(r rune) bool {
					return !(r == '.' || r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
				})
				if end < 0 {
					end = len(rest)
				}
				if end > 0 {
					out = append(out, rest[:end])
				}
			}
		}
	}
	return out
}
