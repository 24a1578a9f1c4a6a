package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/evident-dev/evident/serve"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the users' journeys in testdata/script, each command a
// separate evident process, as a person types them.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"serve": cmdServe},
	})
}

// cmdServe starts an evident server for the script on a free loopback
// port, with its data in $WORK/evident-data (where the CLI's defaults look),
// and sets EVIDENT_SERVER and EVIDENT_TUF_ROOT to it:
//
//	serve [--functionary-roots FILE]
func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! serve")
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	roots := fs.String("functionary-roots", "", "")
	if err := fs.Parse(args); err != nil {
		ts.Fatalf("serve: %v", err)
	}
	cfg := serve.Config{DataDir: ts.MkAbs("evident-data"), Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if *roots != "" {
		cfg.FunctionaryRootsFile = ts.MkAbs(*roots)
	} else {
		cfg.DevSVID = true // as evident serve does in a development data directory
	}
	s, err := serve.Open(cfg)
	ts.Check(err)
	if err := s.Start(); err != nil {
		s.Close(context.Background())
		ts.Fatalf("serve: %v", err)
	}
	ts.Defer(func() { s.Close(context.Background()) })
	ts.Setenv("EVIDENT_SERVER", s.URL())
	ts.Setenv("EVIDENT_TUF_ROOT", filepath.Join(s.TUFDir(), "metadata", "1.root.json"))
}
