package log

import (
	"net/http"
	"time"
)

// SetCommitHook sets a function run after every successful commit, so tests
// can wait for the sequencer without sleeping.
func (l *Log) SetCommitHook(f func(Head)) { l.testHookCommitted = f }

// AppendAddResponse exposes the hand encoder to tests.
var AppendAddResponse = appendAddResponse

// SetDefaultTimeout bounds the requests of Clients without HTTP by d until
// the returned function restores the default.
func SetDefaultTimeout(d time.Duration) func() {
	prev := defaultHTTP
	defaultHTTP = &http.Client{Timeout: d}
	return func() { defaultHTTP = prev }
}
