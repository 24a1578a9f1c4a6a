package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/log"
)

// linksHandler serves the link store (links.db) beside the log: uploads are
// checked against the logged entry they name.
func (s *Server) linksHandler() http.Handler {
	return linkstore.Handler(linkstore.Config{Store: s.links, Entry: s.loggedEntry, Logger: s.cfg.Logger})
}

// loggedEntry is the payload digest and signature of the entry at index.
func (s *Server) loggedEntry(_ context.Context, index uint64) (linkstore.LoggedEntry, error) {
	raw, err := s.Log.Entry(index)
	if errors.Is(err, log.ErrOutOfRange) {
		return linkstore.LoggedEntry{}, fmt.Errorf("%w: %v", linkstore.ErrNoEntry, err)
	} else if err != nil {
		return linkstore.LoggedEntry{}, err
	}
	var e evident.Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return linkstore.LoggedEntry{}, fmt.Errorf("logged entry %d: %w", index, err)
	}
	le := linkstore.LoggedEntry{PayloadType: e.PayloadType}
	if le.PayloadSHA256, err = e.PayloadSum(); err != nil {
		return linkstore.LoggedEntry{}, fmt.Errorf("logged entry %d: %w", index, err)
	}
	return le, nil
}
