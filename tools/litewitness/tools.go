//go:build tools

// Package tools pins litewitness, the C2SP tlog-witness that evident's
// integration tests run as an independent witness, from
// filippo.io/torchwood v0.6.1. It is a module of its own so that the main
// module does not depend on a witness server or SQLite.
//
//	cd tools/litewitness && GOBIN=$PWD/bin go install \
//	  filippo.io/torchwood/cmd/litewitness ./registerlog
//
// witnessctl, torchwood's tool to register a log with the witness, does not
// build here (it needs sigsum.org/sigsum-go, which the module proxy
// refuses); registerlog does what its add-log and add-key commands do.
package tools

import (
	_ "filippo.io/torchwood/cmd/litewitness"
)
