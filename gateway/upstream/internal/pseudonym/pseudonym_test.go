package pseudonym

import "testing"

func TestOf_StableKeyedAndUnambiguous(t *testing.T) {
	a, err := New([]byte("secret-one"), "purpose")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := New([]byte("secret-one"), "purpose")
	b, _ := New([]byte("secret-two"), "purpose")
	c, _ := New([]byte("secret-one"), "other purpose")
	x := a.Of(12, "https://idp", "alice")
	if len(x) != 16 || x != a2.Of(12, "https://idp", "alice") {
		t.Fatalf("not stable or wrong length: %q", x)
	}
	for name, y := range map[string]string{
		"other secret":       b.Of(12, "https://idp", "alice"),
		"other purpose":      c.Of(12, "https://idp", "alice"),
		"other subject":      a.Of(12, "https://idp", "bob"),
		"boundary shifted":   a.Of(12, "https://idpa", "lice"),
		"parts concatenated": a.Of(12, "https://idpalice"),
	} {
		if y == x {
			t.Errorf("%s gives the same pseudonym", name)
		}
	}
	if _, err := New(nil, "p"); err == nil {
		t.Error("empty secret accepted")
	}
}
