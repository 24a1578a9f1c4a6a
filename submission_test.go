package evident

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/evident-dev/evident/internal/strictjson"
)

func TestParseSubmission(t *testing.T) {
	e := validEntryV2(PayloadTypeDSSE, 2)
	canonical := mustMarshal(t, e)
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1"}`)
	s, err := NewSubmission(e, payload)
	if err != nil {
		t.Fatal(err)
	}
	body, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(body, &m)
	pretty, _ := json.MarshalIndent(m, "", "  ") // payload first, entry re-ordered
	for _, in := range [][]byte{body, pretty} {
		got, c, p, err := ParseSubmission(in)
		if err != nil || !bytes.Equal(c, canonical) || !bytes.Equal(p, payload) || got.Version != Version2 {
			t.Errorf("ParseSubmission(%s) = %s, %q, %v; want the entry and payload", in, c, p, err)
		}
	}
	// A bare entry is still accepted, with no payload.
	if _, c, p, err := ParseSubmission(canonical); err != nil || !bytes.Equal(c, canonical) || p != nil {
		t.Errorf("ParseSubmission(bare entry) = %s, %q, %v", c, p, err)
	}
	b := string(body)
	for _, c := range []struct{ name, in, want string }{
		{"no payload", `{"entry":` + string(canonical) + `}`, "payload is missing"},
		{"empty payload", `{"entry":` + string(canonical) + `,"payload":""}`, "payload is missing"},
		{"no entry", `{"payload":"eA=="}`, "entry is missing"},
		{"null entry", `{"entry":null,"payload":"eA=="}`, "entry is missing"},
		{"duplicate payload", strings.Replace(b, `"payload":`, `"payload":"eA==","payload":`, 1), `duplicate key "payload"`},
		{"payload in another case", strings.Replace(b, `"payload":`, `"PAYLOAD":"eA==","payload":`, 1), "PAYLOAD"},
		{"unknown member", strings.Replace(b, `{"entry"`, `{"entry2":1,"entry"`, 1), `unknown field "entry2"`},
		{"payload not base64", strings.Replace(b, `"payload":"`, `"payload":"!`, 1), "illegal base64"},
		{"payload with odd padding bits", `{"entry":` + string(canonical) + `,"payload":"eB=="}`, "payload"},
		{"trailing data", b + "{}", "trailing data"},
		{"entry refused", strings.Replace(b, `"version":2`, `"version":3`, 1), "version 3 is unknown"},
		{"bare entry with a payload member", strings.Replace(string(canonical), `"key_id"`, `"payload":"eA==","key_id"`, 1), `unknown field "payload"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := ParseSubmission([]byte(c.in))
			if !errors.Is(err, ErrInvalidEntry) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseSubmission = %v, want ErrInvalidEntry containing %q", err, c.want)
			}
		})
	}
}

// FuzzParseSubmission: no panic, every error wraps ErrInvalidEntry, and
// what is accepted re-encodes to a submission that parses the same.
func FuzzParseSubmission(f *testing.F) {
	for _, e := range []*Entry{validEntry(), validEntryV2(PayloadTypeDSSE, 1)} {
		s, _ := NewSubmission(e, []byte("payload"))
		b, _ := s.Marshal()
		f.Add(b)
		f.Add(mustMarshal(f, e))
	}
	f.Add([]byte(`{"payload":"eA==","entry":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, canonical, payload, err := ParseSubmission(data)
		if fe, fc, fp, ok := parseCanonicalSubmission(data); ok {
			// The fast path agrees with the strict decoder.
			var s Submission
			doc, err := strictjson.Unmarshal(data, &s, strictjson.Limits{MaxSize: MaxSubmissionSize, MaxDepth: maxEntryDepth + 1})
			if err == nil {
				err = strictjson.Faithful(doc, s, "$", true)
			}
			if err != nil || !bytes.Equal(s.Payload, fp) {
				t.Fatalf("fast path accepted %q, which the strict decoder reads as %q, %v", data, s.Payload, err)
			}
			se, sc, err := ParseEntry(s.Entry)
			if err != nil || !bytes.Equal(sc, fc) || se.PayloadSHA256 != fe.PayloadSHA256 {
				t.Fatalf("fast path entry %s, strict %s, %v", fc, sc, err)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("ParseSubmission error %v does not wrap ErrInvalidEntry", err)
			}
			return
		}
		if payload == nil {
			return
		}
		s, err := NewSubmission(e, payload)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := s.Marshal()
		_, c2, p2, err := ParseSubmission(again)
		if err != nil || !bytes.Equal(c2, canonical) || !bytes.Equal(p2, payload) {
			t.Fatalf("re-encoded submission %s parses to %s, %q, %v", again, c2, p2, err)
		}
	})
}
