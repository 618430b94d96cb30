package closest

import "testing"

func TestWord(t *testing.T) {
	words := []string{"picow", "ideal", "sticky", "new-each-boot", "softap", "router", "echo-server", "echo-client", "WORKER1", "MASTER"}
	for in, want := range map[string]string{
		"pciow": "picow", "stiky": "sticky", "sofap": "softap", "echo-servr": "echo-server",
		"new-each": "new-each-boot", "ideal": "ideal", "xyz": "", "": "", "rotuer": "router",
	} {
		if got := Word(in, words); got != want {
			t.Errorf("Word(%q) = %q, want %q", in, got, want)
		}
	}
	if Hint("ideal", words) != "" || Hint("idael", words) != "; did you mean ideal?" {
		t.Errorf("Hint: %q %q", Hint("ideal", words), Hint("idael", words))
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"nodes", "nodse", 1}, {"kitten", "sitting", 3}, {"ab", "ba", 1}} {
		if got := Distance(c.a, c.b); got != c.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
