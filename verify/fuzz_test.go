package verify_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"

	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// refLink is a link as the reference implementation (in-toto-run 1.3.1)
// writes it: byproducts with stdout and stderr, indented.
const refLink = `{
 "signatures": [
  {
   "keyid": "2f89b9272acfc8f4a0a0f094d789fdb0ba798b0fe41f2f5f417c12f0085ff498",
   "sig": "00"
  }
 ],
 "signed": {
  "_type": "link",
  "byproducts": {
   "return-value": 0,
   "stderr": "",
   "stdout": "line\n"
  },
  "command": ["cp", "src/x.py", "app"],
  "environment": {},
  "materials": {"src/x.py": {"sha256": "aa"}},
  "name": "build",
  "products": {"app": {"sha256": "aa"}}
 }
}`

// refLayout is a layout as the reference implementation writes it.
const refLayout = `{"signatures":[{"keyid":"ab","sig":"00"}],"signed":{"_type":"layout","expires":"2027-01-01T00:00:00Z",
"inspect":[],"keys":{"ab":{"keyid":"ab","keyid_hash_algorithms":["sha256","sha512"],"keytype":"rsa","keyval":{"private":"","public":"PEM"},"scheme":"rsassa-pss-sha256"}},
"readme":"","steps":[{"_type":"step","expected_command":["cp"],"expected_materials":[["ALLOW","src/x.py"],["DISALLOW","*"]],
"expected_products":[["CREATE","app"],["DISALLOW","*"]],"name":"build","pubkeys":["ab"],"threshold":1}]}}`

// differential checks P1 for a Metablock that parsed: a canonical-JSON
// reader (last key wins) signs over exactly the payload returned, and sees
// exactly the decoded object; encoding/json alone (which merges duplicates)
// decodes the same object.
func differential(t *testing.T, data, payload []byte, decoded, lenient any) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("accepted %q, which encoding/json does not decode: %v", data, err)
	}
	want, err := cjson.EncodeCanonical(doc["signed"])
	if err != nil || !bytes.Equal(want, payload) {
		t.Fatalf("payload %q, but the signature would cover %q (%v)", payload, want, err)
	}
	if err := strictjson.Faithful(doc["signed"], decoded, "$.signed", true); err != nil {
		t.Fatalf("decoded %+v, but the signed bytes say otherwise: %v", decoded, err)
	}
	var raw struct {
		Signed json.RawMessage `json:"signed"`
	}
	json.Unmarshal(data, &raw)
	dec = json.NewDecoder(bytes.NewReader(raw.Signed))
	dec.UseNumber()
	if err := dec.Decode(lenient); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if !reflect.DeepEqual(reflect.ValueOf(lenient).Elem().Interface(), decoded) {
		t.Fatalf("decoded %+v, encoding/json reads %+v", decoded, lenient)
	}
}

// FuzzParseLink checks the link differential (P1): whatever ParseLink
// decodes re-encodes to the bytes the signature covers, or is refused.
func FuzzParseLink(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	l := link.NewLink("build", []string{"make"}, map[string]in_toto.HashObj{"src/a.go": {"sha256": "00"}},
		map[string]in_toto.HashObj{"app": {"sha256": "11"}}, &link.Result{})
	mb, _, err := link.Sign(l, link.Signer{Key: key})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := link.MarshalMetablock(mb)
	f.Add(good)
	f.Add([]byte(refLink))
	f.Add([]byte(strings.Replace(string(good), `"signed": {`, `"signed": {"products":{"src/evil":{"sha256":"00"}},`, 1)))
	f.Add([]byte(strings.Replace(refLink, `"environment": {}`, `"environment": {}, "Environment": {"a": 1}`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		mb, payload, err := verify.ParseLink(data)
		if err != nil {
			return
		}
		differential(t, data, payload, mb.Signed, &in_toto.Link{})
	})
}

// FuzzParseLayout checks the layout differential (P1) as FuzzParseLink
// does links, and that CheckLayout never panics on what parses.
func FuzzParseLayout(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	var k in_toto.Key
	if err := k.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		f.Fatal(err)
	}
	mb := in_toto.Metablock{Signed: in_toto.Layout{Type: "layout", Expires: "2027-01-01T00:00:00Z", Keys: map[string]in_toto.Key{},
		Steps:   []in_toto.Step{step("build", [][]string{{"DISALLOW", "*"}}, [][]string{{"CREATE", "app"}, {"MATCH", "*", "WITH", "PRODUCTS", "FROM", "x"}})},
		Inspect: []in_toto.Inspection{{Type: "inspection", Run: []string{"true"}, SupplyChainItem: in_toto.SupplyChainItem{Name: "i"}}}}, Signatures: []in_toto.Signature{}}
	if err := mb.Sign(k); err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(mb)
	f.Add(good)
	f.Add([]byte(refLayout))
	f.Add([]byte(strings.Replace(string(good), `"signed":{`, `"signed":{"steps":[{"_type":"step","name":"x"}],`, 1)))
	f.Add([]byte(strings.Replace(refLayout, `"threshold":1`, `"threshold":1,"Threshold":0`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, _, payload, err := verify.ParseLayout(data)
		if err != nil {
			return
		}
		differential(t, data, payload, l, &in_toto.Layout{})
		verify.CheckLayout(data, nil, t0)
	})
}
