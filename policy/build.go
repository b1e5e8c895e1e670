package policy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/meetguard/meetguard/policies"
)

// buildOptions say how far to take a source: check only, or also run its
// tests (always, for serving), optionally with coverage.
type buildOptions struct {
	verify      *verifier
	runTests    bool
	coverage    bool
	testFilter  string
	testTimeout time.Duration
}

// build is a source compiled into something that can answer queries.
type build struct {
	src      *source
	modules  map[string]*ast.Module
	compiler *ast.Compiler
	store    storage.Store
	tests    []TestResult
	coverage *Coverage
}

// compile takes a source through every stage a revision must pass: JSON
// syntax, signature, parse, schema type-check under the restricted
// capabilities (strict mode), and, if asked, the bundle's own tests. The
// first stage with problems stops it.
func compile(ctx context.Context, src *source, opts buildOptions) (*build, error) {
	if problems := src.checkJSON(); len(problems) > 0 {
		return nil, &LoadError{Source: src.name, Stage: "parse", Problems: problems, kind: ErrInvalidPolicy}
	}
	if opts.verify != nil {
		if err := opts.verify.verify(src); err != nil {
			return nil, &LoadError{Source: src.name, Stage: "signature", kind: ErrBundleSignature, cause: err,
				Problems: []Problem{{Message: err.Error()}}}
		}
	}

	caps := capabilities()
	reader := bundle.NewCustomReader(&memLoader{files: src.files}).
		WithBaseDir(src.baseDir()).
		WithProcessAnnotations(true).
		WithCapabilities(caps).
		WithRegoVersion(ast.RegoV1).
		WithSizeLimitBytes(maxPolicyFileBytes + 1)
	if opts.verify != nil {
		reader = reader.WithBundleVerificationConfig(opts.verify.config)
	} else {
		reader = reader.WithSkipBundleVerification(true)
	}
	b, err := reader.Read()
	if err != nil {
		if opts.verify != nil && !isASTError(err) {
			// The signature was already checked above; anything the reader's
			// own check finds on top still means the bundle is refused.
			return nil, &LoadError{Source: src.name, Stage: "signature", kind: ErrBundleSignature, cause: err,
				Problems: []Problem{{Message: err.Error()}}}
		}
		return nil, &LoadError{Source: src.name, Stage: "parse", kind: ErrInvalidPolicy, cause: err, Problems: astProblems(err, src.name)}
	}
	modules := b.ParsedModules("")
	if len(modules) == 0 {
		return nil, &LoadError{Source: src.name, Stage: "parse", kind: ErrInvalidPolicy,
			Problems: []Problem{{File: src.name, Message: "no .rego files found"}}}
	}

	schemas, problems := schemaSet(src)
	if len(problems) > 0 {
		return nil, &LoadError{Source: src.name, Stage: "parse", Problems: problems, kind: ErrInvalidPolicy}
	}

	store := inmem.NewFromObjectWithOpts(b.Data, inmem.OptRoundTripOnWrite(true), inmem.OptReturnASTValuesOnRead(true))
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, &LoadError{Source: src.name, Stage: "compile", kind: ErrInvalidPolicy, cause: err}
	}
	defer store.Abort(ctx, txn)

	compiler := ast.NewCompiler().
		WithCapabilities(caps).
		WithSchemas(schemas).
		WithUseTypeCheckAnnotations(true).
		WithStrict(true).
		WithEnablePrintStatements(true).
		WithDefaultRegoVersion(ast.RegoV1).
		WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn))

	out := &build{src: src, modules: modules, compiler: compiler, store: store}
	if !opts.runTests {
		if compiler.Compile(modules); compiler.Failed() {
			return nil, compileError(src, compiler.Errors)
		}
		return out, nil
	}

	// The test runner compiles the modules with the compiler above (adding
	// only its test-rule rewrites), so tests and serving share one compile.
	var cov *cover.Cover
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		EnableTracing(false).
		SetTimeout(cmp.Or(opts.testTimeout, 30*time.Second)).
		Filter(opts.testFilter)
	if opts.coverage {
		cov = cover.New()
		runner = runner.SetCoverageQueryTracer(cov).SetCoverageRuns([]cover.Kind{cover.KindIndexExcluded, cover.KindEarlyExit})
	}
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		var errs ast.Errors
		if errors.As(err, &errs) {
			return nil, compileError(src, errs)
		}
		return nil, &LoadError{Source: src.name, Stage: "test", kind: ErrInvalidPolicy, cause: err}
	}
	for r := range ch {
		out.tests = append(out.tests, testResult(r))
	}
	slices.SortFunc(out.tests, func(a, b TestResult) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	if err := ctx.Err(); err != nil {
		return nil, &LoadError{Source: src.name, Stage: "test", kind: ErrInvalidPolicy, cause: err}
	}
	if cov != nil {
		out.coverage = coverageOf(cov, modules)
	}
	return out, nil
}

// testFailures turns failed tests into load problems.
func (b *build) testFailures() *LoadError {
	var problems []Problem
	for _, t := range b.tests {
		if t.Pass() || t.Skip {
			continue
		}
		msg := t.Name + " failed"
		if t.Err != "" {
			msg += ": " + t.Err
		}
		if out := strings.TrimSpace(t.Output); out != "" {
			msg += " (printed: " + out + ")"
		}
		problems = append(problems, Problem{File: t.File, Line: t.Line, Code: "test_failed", Message: msg})
	}
	if len(problems) == 0 {
		return nil
	}
	return &LoadError{Source: b.src.name, Stage: "test", Problems: problems, kind: ErrInvalidPolicy}
}

func isASTError(err error) bool {
	var errs ast.Errors
	var one *ast.Error
	return errors.As(err, &errs) || errors.As(err, &one)
}

// astProblems flattens OPA errors into located problems.
func astProblems(err error, fallbackFile string) []Problem {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		var one *ast.Error
		if !errors.As(err, &one) {
			return []Problem{{File: fallbackFile, Message: err.Error()}}
		}
		errs = ast.Errors{one}
	}
	problems := make([]Problem, 0, len(errs))
	for _, e := range errs {
		p := Problem{Code: e.Code, Message: e.Message, File: fallbackFile}
		if e.Details != nil {
			// Type errors say what was expected and found only here. Lines
			// without a colon are the source excerpt and its caret, which
			// the file:line already points to.
			var lines []string
			for _, l := range e.Details.Lines() {
				if l = strings.TrimSpace(l); strings.Contains(l, ":") {
					lines = append(lines, strings.Join(strings.Fields(l), " "))
				}
			}
			if len(lines) > 0 {
				p.Message += " (" + strings.Join(lines, "; ") + ")"
			}
		}
		if e.Location != nil {
			p.File, p.Line, p.Column = e.Location.File, e.Location.Row, e.Location.Col
		}
		problems = append(problems, p)
	}
	return problems
}

// compileError explains compile errors, naming forbidden built-ins as such
// rather than as OPA's "undefined function".
func compileError(src *source, errs ast.Errors) *LoadError {
	problems := astProblems(errs, src.name)
	for i, p := range problems {
		name, ok := strings.CutPrefix(p.Message, "undefined function ")
		if !ok {
			continue
		}
		if why, bad := forbiddenBuiltin(name); bad {
			problems[i].Code = "forbidden_builtin"
			problems[i].Message = fmt.Sprintf("built-in %s is not allowed in meetguard policies: %s", name, why)
		}
	}
	return &LoadError{Source: src.name, Stage: "compile", Problems: problems, kind: ErrInvalidPolicy, cause: errs}
}

// schemaSet holds the input schema this gateway publishes (the one compiled
// into the binary from policies/schema/input.json) as schema.input, which
// policies name in their "# METADATA schemas:" annotations, and as the
// default input schema for modules without one. The binary's copy wins over
// a bundle's own: the gateway builds the input, so its schema is the truth,
// and bundles built with `opa build` carry no schema files at all. Other
// schema/*.json files of the bundle are loaded as schema.<path> for
// annotations of the team's own.
func schemaSet(src *source) (*ast.SchemaSet, []Problem) {
	ss := ast.NewSchemaSet()
	var problems []Problem
	for _, f := range src.files {
		rel, ok := strings.CutPrefix(f.path, schemaDir+"/")
		if !ok || path.Ext(rel) != ".json" || rel == inputSchemaFile {
			continue
		}
		var v any
		if err := util.UnmarshalJSON(f.data, &v); err != nil {
			problems = append(problems, Problem{File: src.displayPath(f.path), Code: "schema_error", Message: err.Error()})
			continue
		}
		ref := ast.Ref{ast.SchemaRootDocument}
		for _, part := range strings.Split(strings.TrimSuffix(rel, ".json"), "/") {
			ref = append(ref, ast.StringTerm(part))
		}
		ss.Put(ref, v)
	}
	input, err := publishedInputSchema()
	if err != nil {
		problems = append(problems, Problem{Code: "schema_error", Message: "published input schema: " + err.Error()})
		return ss, problems
	}
	ss.Put(ast.SchemaRootRef.Append(ast.StringTerm("input")), input)
	ss.Put(ast.SchemaRootRef, input)
	return ss, problems
}

const inputSchemaFile = "input.json"

// publishedInputSchema is policies/schema/input.json as compiled into the
// binary.
func publishedInputSchema() (any, error) {
	b, err := fs.ReadFile(policies.FS(), schemaDir+"/"+inputSchemaFile)
	if err != nil {
		return nil, err
	}
	var v any
	if err := util.UnmarshalJSON(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// verifier checks bundle signatures against one trusted public key.
type verifier struct {
	config *bundle.VerificationConfig
}

// newVerifier reads a PEM public key (or certificate) and picks the JWS
// algorithm that key can verify.
func newVerifier(keyFile, keyID string) (*verifier, error) {
	pemBytes, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("bundle verification key: %w", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("bundle verification key %s: no PEM block found", keyFile)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("bundle verification key %s: PEM block %q is not a public key", keyFile, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle verification key %s: %w", keyFile, err)
	}
	var alg string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("bundle verification key %s: RSA key of %d bits is too short", keyFile, k.N.BitLen())
		}
		alg = "RS256"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			alg = "ES256"
		case elliptic.P384():
			alg = "ES384"
		case elliptic.P521():
			alg = "ES512"
		default:
			return nil, fmt.Errorf("bundle verification key %s: unsupported curve", keyFile)
		}
	case ed25519.PublicKey:
		alg = "EdDSA"
	default:
		return nil, fmt.Errorf("bundle verification key %s: unsupported key type %T", keyFile, pub)
	}
	keys := map[string]*bundle.KeyConfig{keyID: {Key: string(pemBytes), Algorithm: alg}}
	return &verifier{config: bundle.NewVerificationConfig(keys, "", "", nil)}, nil
}

// verify checks the signature and every file hash before anything in the
// bundle is parsed. The key id must come from the signature itself: an
// unsigned bundle, one without a key id, one naming another key, or one whose
// files differ from what was signed is refused.
func (v *verifier) verify(src *source) error {
	f, ok := src.file(signaturesFile)
	if !ok {
		return errors.New("bundle is not signed: no .signatures.json")
	}
	var sc bundle.SignaturesConfig
	if err := json.Unmarshal(f.data, &sc); err != nil {
		return fmt.Errorf("unreadable %s: %w", signaturesFile, err)
	}
	// Only OPA's own JWT verifier ("_default", as opa build writes it) is
	// accepted; a bundle must not pick its own verifier.
	if sc.Plugin != "" && sc.Plugin != "_default" {
		return fmt.Errorf("signature plugin %q is not supported", sc.Plugin)
	}
	files, err := bundle.VerifyBundleSignature(sc, v.config)
	if err != nil {
		if strings.Contains(err.Error(), "key ID is empty") {
			return fmt.Errorf("the signature names no key id (kid): %w", err)
		}
		return err
	}
	for _, sf := range src.files {
		if sf.path == signaturesFile {
			continue
		}
		if err := bundle.VerifyBundleFile(sf.path, *bytes.NewBuffer(sf.data), files); err != nil {
			return err
		}
		delete(files, sf.path)
	}
	if len(files) > 0 {
		missing := make([]string, 0, len(files))
		for name := range files {
			missing = append(missing, name)
		}
		slices.Sort(missing)
		return fmt.Errorf("signed files missing from the bundle: %s", strings.Join(missing, ", "))
	}
	return nil
}
