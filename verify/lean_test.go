package verify_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLean keeps the offline verifier offline and small: none of its
// dependencies is an HTTP stack, a database or the log server.
func TestLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"net/http", "go.etcd.io/bbolt", "github.com/evident-dev/evident/log",
			"github.com/evident-dev/evident/tsa", "github.com/evident-dev/evident/serve"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("verify depends on %s", dep)
			}
		}
	}
}
