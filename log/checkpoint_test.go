package log_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/evident-dev/evident/log"
	"golang.org/x/mod/sumdb/note"
)

const root32 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" // SHA-256 of ""

// TestParseCheckpoint covers threat model L5.
func TestParseCheckpoint(t *testing.T) {
	good := "example.com/log\n7\n" + root32 + "\n"
	cp, err := log.ParseCheckpoint([]byte(good))
	if err != nil || cp.Origin != "example.com/log" || cp.Size != 7 {
		t.Fatalf("ParseCheckpoint(good) = %+v, %v", cp, err)
	}
	if !bytes.Equal(cp.Marshal(), []byte(good)) {
		t.Errorf("Marshal = %q, want %q", cp.Marshal(), good)
	}
	ext, err := log.ParseCheckpoint([]byte(good + "ext line one\next two\n"))
	if err != nil || len(ext.Extensions) != 2 || ext.Extensions[1] != "ext two" {
		t.Errorf("ParseCheckpoint(with extensions) = %+v, %v", ext, err)
	}
	for _, c := range []struct{ name, in, want string }{
		{"no final newline", strings.TrimSuffix(good, "\n"), "must end in a newline"},
		{"too few lines", "example.com/log\n7\n", "at least 3 lines"},
		{"empty origin", "\n7\n" + root32 + "\n", "empty origin"},
		{"leading zeros", "example.com/log\n007\n" + root32 + "\n", `size "007"`},
		{"plus sign", "example.com/log\n+7\n" + root32 + "\n", `size "+7"`},
		{"negative", "example.com/log\n-7\n" + root32 + "\n", `size "-7"`},
		{"overflow", "example.com/log\n18446744073709551616\n" + root32 + "\n", "out of range"},
		{"hex size", "example.com/log\n0x7\n" + root32 + "\n", `size "0x7"`},
		{"short root", "example.com/log\n7\nAAAA\n", "32 bytes"},
		{"long root", "example.com/log\n7\n" + root32 + "AAAA\n", "32 bytes"},
		{"non-canonical base64", "example.com/log\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n", "canonical base64"},
		{"empty extension", good + "\n", "empty extension"},
		{"control char", "example.com/log\x01\n7\n" + root32 + "\n", "non-printable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := log.ParseCheckpoint([]byte(c.in))
			if !errors.Is(err, log.ErrMalformedCheckpoint) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseCheckpoint(%q) = %v, want ErrMalformedCheckpoint containing %q", c.in, err, c.want)
			}
		})
	}
}

func TestOpenCheckpoint(t *testing.T) {
	k := newKey(t)
	other := newKey(t)
	cp := log.Checkpoint{Origin: testOrigin, Size: 3}
	signed, err := log.SignCheckpoint(cp, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := log.OpenCheckpoint(signed, testOrigin, k.verifier); err != nil || !log.SameCheckpoint(got, cp) {
		t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
	}
	// Signatures by unknown keys are ignored; duplicates too.
	cosigned, _ := note.Sign(&note.Note{Text: string(cp.Marshal())}, k.signer, other.signer)
	if _, err := log.OpenCheckpoint(cosigned, testOrigin, k.verifier); err != nil {
		t.Errorf("OpenCheckpoint(cosigned by an unknown key) = %v", err)
	}
	sigLine := signed[bytes.LastIndex(signed[:len(signed)-1], []byte("\n"))+1:]
	if _, err := log.OpenCheckpoint(append(bytes.Clone(signed), sigLine...), testOrigin, k.verifier); err != nil {
		t.Errorf("OpenCheckpoint(duplicate signature line) = %v", err)
	}
	for _, c := range []struct {
		name   string
		in     []byte
		origin string
		want   error
	}{
		{"other key", signed, testOrigin, log.ErrCheckpointSignature},
		{"tampered size", bytes.Replace(signed, []byte("\n3\n"), []byte("\n4\n"), 1), testOrigin, log.ErrCheckpointSignature},
		{"wrong origin", signed, "other.origin", log.ErrMalformedCheckpoint},
		{"no signature", cp.Marshal(), testOrigin, log.ErrMalformedCheckpoint},
		{"huge", bytes.Repeat([]byte("a"), log.MaxCheckpointSize+1), testOrigin, log.ErrMalformedCheckpoint},
	} {
		v := k.verifier
		if c.name == "other key" {
			v = other.verifier
		}
		if _, err := log.OpenCheckpoint(c.in, c.origin, v); !errors.Is(err, c.want) {
			t.Errorf("%s: OpenCheckpoint = %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzParseCheckpoint covers threat model L5: never a panic, and what parses
// marshals back to the same bytes.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("example.com/log\n7\n" + root32 + "\n"))
	f.Add([]byte("example.com/log\n7\n" + root32 + "\next\n"))
	f.Add([]byte("example.com/log\n007\n" + root32))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := log.ParseCheckpoint(b)
		if err != nil {
			if !errors.Is(err, log.ErrMalformedCheckpoint) {
				t.Fatalf("error %v does not wrap ErrMalformedCheckpoint", err)
			}
			return
		}
		if !bytes.Equal(cp.Marshal(), b) {
			t.Fatalf("ParseCheckpoint(%q).Marshal() = %q", b, cp.Marshal())
		}
	})
}

// FuzzOpenCheckpoint feeds arbitrary notes to the signature check.
func FuzzOpenCheckpoint(f *testing.F) {
	k := newKey(f)
	signed, _ := log.SignCheckpoint(log.Checkpoint{Origin: testOrigin, Size: 1}, k.signer)
	f.Add(signed)
	f.Add(append(bytes.Clone(signed), "— other AAAA\n"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := log.OpenCheckpoint(b, testOrigin, k.verifier)
		if err == nil && cp.Origin != testOrigin {
			t.Fatalf("accepted origin %q", cp.Origin)
		}
	})
}
