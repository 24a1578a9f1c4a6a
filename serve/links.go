package serve

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
	bolt "go.etcd.io/bbolt"
)

// linkStore keeps the links beside the log (links.db): each link
// content-addressed by its payload digest (the entry's payload_sha256), and
// an index from every material and product digest to the log indices of
// the entries whose links name it.
type linkStore struct{ db *bolt.DB }

var (
	bucketLinks     = []byte("links")
	bucketArtifacts = []byte("artifacts")
)

func openLinkStore(path string) (*linkStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLinks, bucketArtifacts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &linkStore{db: db}, nil
}

// MaxArtifactMatches bounds the log indices returned for one artifact.
const MaxArtifactMatches = 1000

// LinkUpload is the body of POST /links/v1.
type LinkUpload struct {
	Index uint64          `json:"index"`
	Link  json.RawMessage `json:"link"`
}

var errLinkMismatch = errors.New("the link is not the payload of that entry")

// putLink stores the link of the entry at index, after checking that the
// link's canonical signed bytes are that entry's payload.
func (s *Server) putLink(w http.ResponseWriter, r *http.Request) {
	var up LinkUpload
	dec := json.NewDecoder(io.LimitReader(r.Body, verify.MaxLinkSize+1024))
	if err := dec.Decode(&up); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := s.Log.Entry(up.Index)
	if err != nil {
		http.Error(w, "entry: "+err.Error(), http.StatusBadRequest)
		return
	}
	var e evident.Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		http.Error(w, "entry: "+err.Error(), http.StatusInternalServerError)
		return
	}
	mb, payload, err := verify.ParseLink(up.Link)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if d := sha256.Sum256(payload); hex.EncodeToString(d[:]) != e.PayloadSHA256 {
		http.Error(w, errLinkMismatch.Error(), http.StatusBadRequest)
		return
	}
	l := mb.Signed.(in_toto.Link)
	err = s.links.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketLinks).Put([]byte(e.PayloadSHA256), up.Link); err != nil {
			return err
		}
		arts := tx.Bucket(bucketArtifacts)
		for _, set := range []map[string]in_toto.HashObj{l.Materials, l.Products} {
			for _, h := range set {
				d, err := hex.DecodeString(h["sha256"])
				if err != nil || len(d) != sha256.Size {
					continue
				}
				if err := arts.Put(binary.BigEndian.AppendUint64(d, up.Index), nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		http.Error(w, "couldn't store the link", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getLink serves a link by payload digest.
func (s *Server) getLink(w http.ResponseWriter, r *http.Request) {
	var b []byte
	s.links.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketLinks).Get([]byte(r.PathValue("digest"))); v != nil {
			b = append([]byte(nil), v...)
		}
		return nil
	})
	if b == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// artifactIndices answers GET /links/v1/artifacts/{sha256}: the log indices
// of entries whose links name that digest as a material or product.
func (s *Server) artifactIndices(w http.ResponseWriter, r *http.Request) {
	d, err := hex.DecodeString(r.PathValue("digest"))
	if err != nil || len(d) != sha256.Size {
		http.Error(w, "want a SHA-256 in hex", http.StatusBadRequest)
		return
	}
	out := []uint64{}
	s.links.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketArtifacts).Cursor()
		for k, _ := c.Seek(d); k != nil && len(k) == sha256.Size+8 && string(k[:sha256.Size]) == string(d) && len(out) < MaxArtifactMatches; k, _ = c.Next() {
			out = append(out, binary.BigEndian.Uint64(k[sha256.Size:]))
		}
		return nil
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"indices": out})
}
