package tufrepo

import (
	"strings"
	"testing"
)

// TestIndexStrict covers threat model P1 for the layout index, a
// TUF-delivered target: a key twice, an unknown key, or a key in another
// case beside the real one (encoding/json would let the last of
// "withdrawn" and "Withdrawn" win, un-withdrawing a version that a reader
// of the JSON sees withdrawn) are refused.
func TestIndexStrict(t *testing.T) {
	const v = `{"version":1,"target":"layouts/a/b/v1.layout","published":"2026-01-01T00:00:00Z"`
	for _, tc := range []struct{ name, doc, want string }{
		{"case variant", `{"project":"a","name":"b","versions":[` + v + `,"withdrawn":"2026-01-02T00:00:00Z","Withdrawn":null}]}`, "not carried"},
		{"duplicate", `{"project":"a","name":"b","versions":[` + v + `,"withdrawn":"2026-01-02T00:00:00Z","withdrawn":null}]}`, "duplicate key"},
		{"unknown", `{"project":"a","name":"b","versions":[` + v + `,"withdrawal":"2026-01-02T00:00:00Z"}]}`, "unknown field"},
	} {
		var idx LayoutIndex
		if err := parseIndex([]byte(tc.doc), &idx); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: parseIndex = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	var idx LayoutIndex
	if err := parseIndex([]byte(`{"project":"a","name":"b","versions":[`+v+`,"withdrawn":"2026-01-02T00:00:00Z","withdrawn_reason":"bad"}]}`), &idx); err != nil || idx.Versions[0].Withdrawn == nil {
		t.Errorf("a withdrawn version: %v, %+v", err, idx)
	}
}
