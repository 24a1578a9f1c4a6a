// Command registerlog registers a log with a litewitness database, as
// witnessctl's add-log and add-key commands do: the log starts at the empty
// tree, and its checkpoints are verified with the given note verifier key.
//
//	registerlog -db litewitness.db -origin ORIGIN -key VKEY
//
// It can run while litewitness runs (SQLite serialises the writes).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// emptyTree is the RFC 6962 root of the empty tree, SHA-256(""), in base64.
const emptyTree = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

func main() {
	db := flag.String("db", "litewitness.db", "litewitness's SQLite database")
	origin := flag.String("origin", "", "the log's checkpoint origin")
	key := flag.String("key", "", "the log's note verifier key")
	flag.Parse()
	if *origin == "" || *key == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: registerlog -db FILE -origin ORIGIN -key VKEY")
		os.Exit(2)
	}
	v, err := note.NewVerifier(*key)
	if err != nil || v.Name() != *origin {
		fmt.Fprintf(os.Stderr, "registerlog: -key must be a note verifier key named %q: %v\n", *origin, err)
		os.Exit(2)
	}
	conn, err := sqlite.OpenConn(*db, sqlite.OpenReadWrite)
	if err != nil {
		fmt.Fprintf(os.Stderr, "registerlog: %v\n", err)
		os.Exit(1)
	}
	defer conn.Close()
	conn.SetBusyTimeout(0)
	err = sqlitex.Execute(conn, "INSERT INTO log (origin, tree_size, tree_hash) VALUES (?, 0, ?)",
		&sqlitex.ExecOptions{Args: []any{*origin, emptyTree}})
	if err == nil {
		err = sqlitex.Execute(conn, "INSERT INTO key (origin, key) VALUES (?, ?)",
			&sqlitex.ExecOptions{Args: []any{*origin, strings.TrimSpace(*key)}})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "registerlog: %v\n", err)
		os.Exit(1)
	}
}
