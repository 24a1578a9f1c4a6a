package verify_test

import (
	"os"
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
		for _, banned := range []string{"net/http", "go.etcd.io/bbolt", "github.com/jackc/pgx",
			"github.com/evident-dev/evident/log", "github.com/evident-dev/evident/tsa",
			"github.com/evident-dev/evident/serve", "github.com/evident-dev/evident/pgstore"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("verify depends on %s", dep)
			}
		}
	}
}

const module = "github.com/evident-dev/evident"

// layers is the module's layering, lowest first: a package may import
// packages of its own layer or below, never one above. Every package of
// the module is listed ("" is the module's root package), so a new one is
// placed deliberately.
var layers = []struct {
	name string
	pkgs []string
}{
	{"foundations: encodings, files, HTTP conventions, test kits", []string{
		"internal/strictjson", "internal/pemfile", "internal/httpapi", "internal/boltfile",
		"atomicfile", "artifact", "tlog",
		"internal/pkitest", "internal/spiffetest", "internal/pgtest", "internal/litewitness"}},
	{"formats: entries, bundles, the trust root", []string{"", "dsse", "witness/witnesstest"}},
	{"protocols: RFC 3161 tokens, the offline verifier", []string{"rfc3161", "verify"}},
	{"services: the log, the TSA, witnessing, signing, TUF, Sigstore export", []string{
		"log", "tsa", "witness", "identity", "link", "tufrepo", "sigstore"}},
	{"stores and clients", []string{
		"log/boltstore", "log/logclient", "log/storetest", "internal/logtest", "linkstore", "linkstore/storetest", "pgstore"}},
	{"the server", []string{"serve"}},
	{"commands", []string{"cmd/evident", "cmd/evident-load"}},
}

// TestLayers keeps the house standing: no package of the module imports a
// package of a layer above its own.
func TestLayers(t *testing.T) {
	layerOf := map[string]int{}
	for i, l := range layers {
		for _, p := range l.pkgs {
			layerOf[strings.TrimSuffix(module+"/"+p, "/")] = i
		}
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		mine, ok := layerOf[pkg]
		if !ok {
			t.Errorf("%s is in no layer: add it to the table in verify/lean_test.go", pkg)
			continue
		}
		for _, imp := range imports {
			if theirs, ok := layerOf[imp]; ok && theirs > mine {
				t.Errorf("%s (%s) imports %s (%s), a layer above", pkg, layers[mine].name, imp, layers[theirs].name)
			}
		}
	}
}

// TestCodeMap: the README's code map lists every package of the module
// with its job, so a newcomer finds every room.
func TestCodeMap(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, codeMap, ok := strings.Cut(string(readme), "## Code map")
	if !ok {
		t.Fatal("README.md has no Code map section")
	}
	out, err := exec.Command("go", "list", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		dir := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if dir == "" {
			dir = "evident (root)"
		} else {
			dir += "/"
		}
		if !strings.Contains(codeMap, "  "+dir+" ") {
			t.Errorf("the README's code map does not list %s", dir)
		}
	}
}
