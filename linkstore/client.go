package linkstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/evident-dev/evident/internal/httpapi"
)

// Client is the link store's HTTP client.
type Client struct {
	// URL is the server's base URL, e.g. https://evident.example.
	URL string
	// HTTP is the HTTP client (default: one whose requests time out after
	// httpapi.ClientTimeout).
	HTTP *http.Client
}

func (c *Client) http() *http.Client { return httpapi.Client(c.HTTP) }

func (c *Client) url(path string) string { return strings.TrimSuffix(c.URL, "/") + path }

// Upload stores link, in its canonical form, as the link of the logged
// entry at index. Uploading the same link again succeeds; another link
// under a stored digest returns an error wrapping ErrConflict.
func (c *Client) Upload(ctx context.Context, index uint64, link []byte) error {
	doc, _, err := Canonical(link)
	if err != nil {
		return err
	}
	return c.upload(ctx, &UploadRequest{Index: index, Link: doc})
}

// UploadStatement stores statement, the payload of a DSSE entry exactly as
// signed, as the Statement of the logged entry at index.
func (c *Client) UploadStatement(ctx context.Context, index uint64, statement []byte) error {
	return c.upload(ctx, &UploadRequest{Index: index, Statement: statement})
}

func (c *Client) upload(ctx context.Context, up *UploadRequest) error {
	// Not json.Marshal, which would HTML-escape the link's bytes.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(up); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(PathLinks), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	_, err = c.do(req, 0)
	return err
}

// Link returns the link (or, for a DSSE entry, the Statement) stored under
// a payload digest (ErrNotFound if none). The caller checks it: see
// verify.ParseLink and dsse.ParseStatement.
func (c *Client) Link(ctx context.Context, digest [32]byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(PathLinks+"/"+hex.EncodeToString(digest[:])), nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, MaxUploadSize)
}

// ArtifactIndices returns the log indices of the entries whose links name
// artifact as a material or product (at most MaxArtifactMatches).
func (c *Client) ArtifactIndices(ctx context.Context, artifact [32]byte) ([]uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(PathArtifacts+hex.EncodeToString(artifact[:])), nil)
	if err != nil {
		return nil, err
	}
	b, err := c.do(req, 1<<20)
	if err != nil {
		return nil, err
	}
	var resp ArtifactsResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("the server's artifact index answer: %w", err)
	}
	return resp.Indices, nil
}

// do sends req and returns at most limit bytes of a 2xx body; other
// statuses become errors wrapping the matching package error.
func (c *Client) do(req *http.Request, limit int64) ([]byte, error) {
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("%s %s: the answer is over %d bytes", req.Method, req.URL.Path, limit)
		}
		return b, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	err = fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, httpapi.ErrorMessage(msg))
	switch resp.StatusCode {
	case http.StatusConflict:
		return nil, fmt.Errorf("%w (%v)", ErrConflict, err)
	case http.StatusNotFound:
		if req.Method == http.MethodGet {
			return nil, fmt.Errorf("%w (%v)", ErrNotFound, err)
		}
	}
	return nil, err
}
