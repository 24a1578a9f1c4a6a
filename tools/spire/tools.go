//go:build tools

// Package tools pins the SPIRE server and agent that evident's integration
// tests run. It is a module of its own, outside the main module, because
// the Go module proxy here refuses SPIRE's version list, which a plain
// "go install …@v1.13.3" needs; requiring the version in go.mod avoids it.
//
//	cd tools/spire && go mod tidy && GOBIN=$PWD/bin go install \
//	  github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent
package tools

import (
	_ "github.com/spiffe/spire/cmd/spire-agent"
	_ "github.com/spiffe/spire/cmd/spire-server"
)
