package main

import (
	"flag"

	"github.com/evident-dev/evident/tufrepo"
)

// tufCacheHelp documents --tuf-cache for every command that reads TUF.
const tufCacheHelp = "`directory` keeping the verified TUF metadata between runs, so that a rollback is caught (default: the user's cache directory, evident/tuf/<root hash>)"

// addTUFCacheFlag registers --tuf-cache.
func addTUFCacheFlag(fs *flag.FlagSet) *string { return fs.String("tuf-cache", "", tufCacheHelp) }

// tufCacheDir is --tuf-cache, or the default for the trusted root.
func tufCacheDir(flagValue string, root []byte) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return tufrepo.DefaultCacheDir(root)
}
