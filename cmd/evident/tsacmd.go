package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tsa"
)

const tsaUsage = `
Usage: evident tsa serve [--data DIR] [--addr HOST:PORT] [--tsa-key KEY.pem --tsa-chain CHAIN.pem]

Runs the RFC 3161 time-stamp authority alone (evident serve runs it too, at
/tsa). It answers POST /tsa (application/timestamp-query) and serves its
chain at GET /tsa/certchain.

With no --tsa-key it creates a development TSA in --data (tsa.key,
tsa-chain.pem). A production key and chain (PEM, TSA certificate first, root
last) are checked before the server starts: the key must match, the EKU must
be critical and timeStamping only, the certificate no CA, the chain valid.

Examples:
  evident tsa serve --addr 127.0.0.1:8318
  evident tsa serve --tsa-key /etc/evident/tsa.key --tsa-chain /etc/evident/tsa-chain.pem
`

func runTSA(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "serve" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(e.stdout, strings.TrimLeft(tsaUsage, "\n"))
			return nil
		}
		return &usageError{msg: "tsa needs the subcommand serve", usage: shortUsage(tsaUsage), cmd: "tsa"}
	}
	fs := newFlags(e, "tsa serve", tsaUsage)
	data := fs.String("data", string(serve.DefaultDataDir), "data `directory` for the development TSA")
	addr := fs.String("addr", "127.0.0.1:8318", "listen `address`")
	keyFile := fs.String("tsa-key", "", "production TSA private key (PEM)")
	chainFile := fs.String("tsa-chain", "", "production TSA chain (PEM, TSA certificate first, root last)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	key, chain, err := serve.DataDir(*data).LoadTSA(*keyFile, *chainFile, time.Now())
	if errors.Is(err, serve.ErrTSAKeyPair) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	s, err := tsa.NewServer(tsa.Config{Signer: key, Chain: chain, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := httpapi.NewServer(s.Handler(), logger, 0)
	fmt.Fprintf(e.stdout, "evident TSA serving at http://%s/tsa (certificate chain at /tsa/certchain)\n", ln.Addr())
	fmt.Fprintf(e.stdout, "  TSA certificate: %s, valid until %s\n", chain[0].Subject, chain[0].NotAfter.UTC().Format(time.RFC3339))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
