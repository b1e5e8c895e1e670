package policy

import (
	"cmp"
	"context"
	"errors"
)

// CheckOptions select the policy to check.
type CheckOptions struct {
	Dir                     string
	Bundle                  string
	BundleVerificationKey   string
	BundleVerificationKeyID string
}

// Check parses, verifies, schema type-checks and compiles a policy under
// meetguard's restricted capabilities, without running its tests. It returns
// the revision hash the policy would serve under.
func Check(ctx context.Context, opts CheckOptions) (revision string, err error) {
	if (opts.Dir == "") == (opts.Bundle == "") {
		return "", errors.Join(ErrInvalidOptions, errors.New("give exactly one of a policy directory or a bundle file"))
	}
	src, err := readSource(opts.Dir, opts.Bundle)
	if err != nil {
		return "", err
	}
	v, err := verifierFor(opts.BundleVerificationKey, opts.BundleVerificationKeyID)
	if err != nil {
		return "", err
	}
	if _, err := compile(ctx, src, buildOptions{verify: v}); err != nil {
		return "", err
	}
	return src.hash(), nil
}

// verifierFor returns nil when no key is configured.
func verifierFor(keyFile, keyID string) (*verifier, error) {
	if keyFile == "" {
		return nil, nil
	}
	v, err := newVerifier(keyFile, cmp.Or(keyID, DefaultBundleKeyID))
	if err != nil {
		return nil, errors.Join(ErrInvalidOptions, err)
	}
	return v, nil
}
