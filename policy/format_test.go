package policy

import "testing"

func TestShippedPolicy_IsFormatted(t *testing.T) {
	files, err := RegoFiles(shippedPolicies)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Rego files")
	}
	for _, f := range files {
		r, err := FormatFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if r.Changed {
			t.Errorf("%s is not formatted: run meetguard policy fmt -w %s", f, f)
		}
	}
}
