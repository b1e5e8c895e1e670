package main_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/meetguard/meetguard/gateway/config"
)

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// stage is one FROM … and the instructions under it.
type stage struct {
	from, name string
	ins        []instruction
}

func parseContainerfile(t *testing.T, path string) []stage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	sc := bufio.NewScanner(bytes.NewReader(b))
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) > 0:
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		case in.cmd != "ARG":
			t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
		}
	}
	return stages
}

// TestContainerfile_Recipe checks the image recipe against its promises:
// multi-stage, static binary, non-root, nothing to run a shell with.
// (Building the image needs a container engine; .ci/run builds it with
// buildah when one is installed, see docs/operations.md.)
func TestContainerfile_Recipe(t *testing.T) {
	const path = "../../deploy/container/Containerfile"
	stages := parseContainerfile(t, path)
	if len(stages) < 2 {
		t.Fatalf("%s: %d stage(s), want a build stage and a runtime stage", path, len(stages))
	}
	final := stages[len(stages)-1]
	// An empty base: no shell, no package manager, no libc.
	if final.from != "scratch" && !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s: want scratch (or distroless/static)", final.from)
	}
	var user, entrypoint string
	for _, in := range final.ins {
		switch in.cmd {
		case "RUN", "SHELL":
			// RUN in the final stage needs a shell in it.
			t.Errorf("%s:%d: %s in the final stage", path, in.line, in.cmd)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
			if !strings.HasPrefix(in.args, "[") {
				t.Errorf("%s:%d: CMD in shell form", path, in.line)
			}
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]*:[1-9][0-9]*$`).MatchString(user) {
		t.Errorf("final stage USER %q: want a numeric non-root uid:gid (there is no /etc/passwd)", user)
	}
	if !strings.HasPrefix(entrypoint, `["/`) {
		t.Errorf("ENTRYPOINT %q: want exec form with an absolute path (no shell to parse it)", entrypoint)
	}
	if cmd := buildCommand(t, stages); !strings.Contains(cmd, "CGO_ENABLED=0") || !strings.Contains(cmd, "-trimpath") {
		t.Errorf("build command %q: want CGO_ENABLED=0 and -trimpath", cmd)
	}
}

// buildCommand is the go build RUN of the build stages.
func buildCommand(t *testing.T, stages []stage) string {
	t.Helper()
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.ins {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				return in.args
			}
		}
	}
	t.Fatal("no go build in the build stages")
	return ""
}

// TestContainerfile_BinaryIsStatic builds the binary exactly as the
// recipe does (its environment and flags) and checks that it needs no
// dynamic loader or shared library: on an empty base image it could not
// start otherwise.
func TestContainerfile_BinaryIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole binary")
	}
	cmd := buildCommand(t, parseContainerfile(t, "../../deploy/container/Containerfile"))
	env, args := []string{}, []string{}
	fields := regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(cmd, -1)
	i := 0
	for ; i < len(fields) && strings.Contains(fields[i], "="); i++ {
		env = append(env, fields[i])
	}
	if i+1 >= len(fields) || fields[i] != "go" || fields[i+1] != "build" {
		t.Fatalf("unexpected build command %q", cmd)
	}
	out := filepath.Join(t.TempDir(), "meetguard")
	for j := i + 2; j < len(fields); j++ {
		f := strings.Trim(fields[j], `"`)
		f = strings.ReplaceAll(f, "${VERSION}", "test")
		switch {
		case f == "&&":
			j = len(fields)
			continue
		case f == "-o":
			j++
			f = out
			args = append(args, "-o")
		}
		args = append(args, f)
	}
	c := exec.Command("go", append([]string{"build"}, args...)...)
	c.Dir = "../.."
	c.Env = append(os.Environ(), env...)
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("binary has %v: not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary needs %v", libs)
	}
	b, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "test") {
		t.Fatalf("meetguard version: %v\n%s", err, b)
	}
}

// TestCompose_Services checks the compose file: the three services, and
// meetguard hardened as the image expects (read-only root, tmpfs /tmp,
// non-root, no capabilities, no privilege gain).
func TestCompose_Services(t *testing.T) {
	b, err := os.ReadFile("../../deploy/container/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Image       string   `yaml:"image"`
			ReadOnly    bool     `yaml:"read_only"`
			Tmpfs       []string `yaml:"tmpfs"`
			User        string   `yaml:"user"`
			CapDrop     []string `yaml:"cap_drop"`
			SecurityOpt []string `yaml:"security_opt"`
			Volumes     []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, name := range []string{"meetguard", "redis", "livekit"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml has no %s service", name)
		}
	}
	mg := c.Services["meetguard"]
	if mg.Build == nil {
		t.Fatal("meetguard service is not built from the recipe")
	}
	if _, err := os.Stat(filepath.Join("../../deploy/container", mg.Build.Context, mg.Build.Dockerfile)); err != nil {
		t.Errorf("meetguard build: %v", err)
	}
	if !mg.ReadOnly || len(mg.Tmpfs) == 0 || !strings.HasPrefix(mg.Tmpfs[0], "/tmp") {
		t.Errorf("meetguard: want read_only with a tmpfs at /tmp, got read_only=%v tmpfs=%v", mg.ReadOnly, mg.Tmpfs)
	}
	if mg.User == "" || strings.HasPrefix(mg.User, "0") || strings.HasPrefix(mg.User, "root") {
		t.Errorf("meetguard user %q: want non-root", mg.User)
	}
	if len(mg.CapDrop) != 1 || mg.CapDrop[0] != "ALL" || len(mg.SecurityOpt) == 0 || mg.SecurityOpt[0] != "no-new-privileges:true" {
		t.Errorf("meetguard: want cap_drop [ALL] and no-new-privileges, got %v %v", mg.CapDrop, mg.SecurityOpt)
	}
	for _, v := range mg.Volumes {
		if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./") {
			if _, err := os.Stat(filepath.Join("../../deploy/container", src)); err != nil {
				t.Errorf("meetguard volume %s: %v", v, err)
			}
		}
	}
}

// TestCompose_ConfigValidates loads the compose file's meetguard.yaml
// with env.example's variables filled in, as `meetguard config validate`
// would: a recipe whose config the gateway refuses is no recipe.
func TestCompose_ConfigValidates(t *testing.T) {
	b, err := os.ReadFile("../../deploy/container/meetguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	path := filepath.Join(t.TempDir(), "meetguard.yaml")
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte("/var/lib/meetguard"), []byte(state)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	example, err := os.ReadFile("../../deploy/container/env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(example), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			if v == "" {
				v = strings.Repeat("x", 48) // the secrets env.example leaves to the operator
			}
			env[k] = v
		}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if _, err := config.LoadFile(path, lookup); err != nil {
		t.Fatalf("compose meetguard.yaml does not validate:\n%v", err)
	}
}
