package log

// SetCommitHook sets a function run after every successful commit, so tests
// can wait for the sequencer without sleeping.
func (l *Log) SetCommitHook(f func(Head)) { l.testHookCommitted = f }

// AppendAddResponse exposes the hand encoder to tests.
var AppendAddResponse = appendAddResponse
