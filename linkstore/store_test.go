package linkstore_test

import (
	"path/filepath"
	"testing"

	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/linkstore/storetest"
)

func TestBolt(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) linkstore.Store {
		s, err := linkstore.OpenBolt(filepath.Join(t.TempDir(), "links.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMemory(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) linkstore.Store { return linkstore.NewMemory() })
}
