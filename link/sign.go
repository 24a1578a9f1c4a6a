package link

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// Signer is a signing identity: a key and, for X.509 functionaries (SVIDs,
// key and certificate files), its chain, leaf first, captured when it signs.
type Signer struct {
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// inTotoKey expresses s as in-toto-golang's Key: the private key in PKCS #8
// PEM, with the leaf certificate for X.509 functionaries.
func (s Signer) inTotoKey() (in_toto.Key, error) {
	keyPEM, err := pemfile.EncodePrivateKey(s.Key)
	if err != nil {
		return in_toto.Key{}, err
	}
	var k in_toto.Key
	if err := k.LoadKeyReaderDefaults(bytes.NewReader(keyPEM)); err != nil {
		return in_toto.Key{}, err
	}
	if len(s.Chain) > 0 {
		k.KeyVal.Certificate = string(pemfile.EncodeCertificates(s.Chain[:1]))
	}
	return k, nil
}

// Result is what running a step's command produced.
type Result struct {
	ExitCode       int
	Stdout, Stderr []byte
	Recorded       bool // whether Stdout and Stderr were captured
}

// Streams are the standard streams a step's command runs with; a nil
// Stdin reads nothing, a nil Stdout or Stderr discards.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// RunCommand runs args with the given streams (evident run passes its own)
// and returns its exit code; with record, stdout and stderr are also
// captured. A command that cannot start is an error; one that exits
// non-zero is not.
func RunCommand(ctx context.Context, args []string, std Streams, record bool) (*Result, error) {
	if len(args) == 0 {
		return &Result{}, nil
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = std.Stdin
	stdout, stderr := orDiscard(std.Stdout), orDiscard(std.Stderr)
	res := &Result{Recorded: record}
	var out, errb bytes.Buffer
	if record {
		cmd.Stdout, cmd.Stderr = multi(stdout, &out), multi(stderr, &errb)
	} else {
		cmd.Stdout, cmd.Stderr = stdout, stderr
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case err != nil:
		return nil, fmt.Errorf("couldn't run %q: %w", args[0], err)
	}
	res.Stdout, res.Stderr = out.Bytes(), errb.Bytes()
	return res, nil
}

type multiWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (m multiWriter) Write(p []byte) (int, error) {
	m.b.Write(p)
	return m.a.Write(p)
}

func multi(a, b interface{ Write([]byte) (int, error) }) multiWriter { return multiWriter{a, b} }

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// NewLink builds the in-toto link of a step.
func NewLink(step string, cmd []string, materials, products map[string]in_toto.HashObj, res *Result) in_toto.Link {
	by := map[string]any{"return-value": res.ExitCode}
	if res.Recorded {
		by["stdout"], by["stderr"] = string(res.Stdout), string(res.Stderr)
	}
	if cmd == nil {
		cmd = []string{}
	}
	return in_toto.Link{Type: "link", Name: step, Materials: materials, Products: products,
		ByProducts: by, Command: cmd, Environment: map[string]any{}}
}

// Sign signs link as an in-toto Metablock (the format other in-toto
// implementations read; the signature carries the leaf certificate) and
// returns it with the link's file name, <step>.<keyid prefix>.link.
func Sign(l in_toto.Link, s Signer) (*in_toto.Metablock, string, error) {
	k, err := s.inTotoKey()
	if err != nil {
		return nil, "", err
	}
	mb := &in_toto.Metablock{Signed: l, Signatures: []in_toto.Signature{}}
	if err := mb.Sign(k); err != nil {
		return nil, "", fmt.Errorf("couldn't sign the link: %w", err)
	}
	return mb, fmt.Sprintf(in_toto.LinkNameFormat, l.Name, k.KeyID), nil
}

// Entry countersigns a Metablock's first signature and returns the log
// entry. chain (leaf first) or pub identify the signer.
func Entry(ctx context.Context, ts Stamper, mb *in_toto.Metablock, chain []*x509.Certificate, pub crypto.PublicKey) (*evident.Entry, error) {
	if len(mb.Signatures) == 0 {
		return nil, errors.New("the link is not signed")
	}
	payload, err := mb.GetSignableRepresentation()
	if err != nil {
		return nil, err
	}
	sig, err := hex.DecodeString(mb.Signatures[0].Sig)
	if err != nil {
		return nil, fmt.Errorf("the link's signature is not hex: %w", err)
	}
	return CountersignSignature(ctx, ts, evident.PayloadTypeLink, payload, sig, mb.Signatures[0].KeyID, chain, pub)
}

// MarshalMetablock encodes a Metablock as in-toto-golang writes link files.
func MarshalMetablock(mb *in_toto.Metablock) ([]byte, error) {
	return json.MarshalIndent(mb, "", "  ")
}
