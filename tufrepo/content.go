package tufrepo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/strictjson"
)

// LayoutIndex lists every published version of one layout. It is a target
// beside the layouts (layouts/<project>/<name>/index.json), so the list is
// as trustworthy as the layouts themselves.
type LayoutIndex struct {
	Project  string          `json:"project"`
	Name     string          `json:"name"`
	Versions []LayoutVersion `json:"versions"`
}

// LayoutVersion is one published version of a layout. A withdrawn version
// stays listed (versions are never removed) but is never picked: a bad
// layout is withdrawn as if it had never been published, and the version
// before it is current again.
type LayoutVersion struct {
	Version   int        `json:"version"`
	Target    string     `json:"target"`
	Published time.Time  `json:"published"`
	Withdrawn *time.Time `json:"withdrawn,omitempty"`
	Reason    string     `json:"withdrawn_reason,omitempty"`
}

// maxIndexSize bounds a layout index (some 100,000 versions).
const maxIndexSize = 16 << 20

// parseIndex decodes a layout index strictly and faithfully: no duplicate
// or unknown fields, no key in another case, no trailing data.
func parseIndex(b []byte, idx *LayoutIndex) error {
	doc, err := strictjson.Unmarshal(b, idx, strictjson.Limits{MaxSize: maxIndexSize, MaxDepth: 4})
	if err == nil {
		err = strictjson.Faithful(doc, idx, "$", true)
	}
	if err != nil {
		return fmt.Errorf("layout index: %w", err)
	}
	return nil
}

// ErrNoLayoutVersion reports a layout version that does not exist.
var ErrNoLayoutVersion = errors.New("no such layout version")

func layoutDir(project, name string) (string, error) {
	for _, s := range []string{project, name} {
		if s == "" || strings.ContainsAny(s, "/*?[]\\") || s == "." || s == ".." {
			return "", fmt.Errorf("bad layout project or name %q", s)
		}
	}
	return "layouts/" + project + "/" + name + "/", nil
}

// layoutRole is the role that signs a project's layouts: its delegated
// role if it has one, else the top-level targets role.
func (r *Repo) layoutRole(project string) string {
	if _, ok := r.targets[ProjectRole(project)]; ok {
		return ProjectRole(project)
	}
	return Targets
}

// PublishLayout publishes layout as the next version of project/name and
// returns it. Older versions stay. signers must hold the keys of the role
// that signs the project's layouts, and the online keys.
func (r *Repo) PublishLayout(project, name string, layout []byte, signers Signers) (LayoutVersion, error) {
	dir, err := layoutDir(project, name)
	if err != nil {
		return LayoutVersion{}, err
	}
	role := r.layoutRole(project)
	idx := LayoutIndex{Project: project, Name: name}
	b, _, err := r.Target(role, dir+"index.json")
	switch {
	case err == nil:
		if err := parseIndex(b, &idx); err != nil {
			return LayoutVersion{}, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return LayoutVersion{}, err
	}
	v := LayoutVersion{Version: len(idx.Versions) + 1, Published: r.now().UTC()}
	v.Target = fmt.Sprintf("%sv%d.layout", dir, v.Version)
	idx.Versions = append(idx.Versions, v)
	if err := r.SetTarget(role, v.Target, layout, v); err != nil {
		return LayoutVersion{}, err
	}
	return v, r.publishLayoutIndex(role, dir, idx, signers)
}

func (r *Repo) layoutIndex(role, dir string) (LayoutIndex, error) {
	var idx LayoutIndex
	b, _, err := r.Target(role, dir+"index.json")
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("layout index: %w", err)
	}
	return idx, nil
}

func (r *Repo) publishLayoutIndex(role, dir string, idx LayoutIndex, signers Signers) error {
	ib, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := r.SetTarget(role, dir+"index.json", ib, nil); err != nil {
		return err
	}
	return r.Publish(signers)
}

// WithdrawLayout marks version of project/name withdrawn, with a reason,
// and publishes the index: clients then never pick it, at any time, and
// the version before it is current again. signers are as for
// PublishLayout.
func (r *Repo) WithdrawLayout(project, name string, version int, reason string, signers Signers) (LayoutVersion, error) {
	dir, err := layoutDir(project, name)
	if err != nil {
		return LayoutVersion{}, err
	}
	role := r.layoutRole(project)
	idx, err := r.layoutIndex(role, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return LayoutVersion{}, fmt.Errorf("%w: layout %s/%s has no versions", ErrNoLayoutVersion, project, name)
	}
	if err != nil {
		return LayoutVersion{}, err
	}
	if version < 1 || version > len(idx.Versions) {
		return LayoutVersion{}, fmt.Errorf("%w: layout %s/%s has versions 1 to %d, not %d", ErrNoLayoutVersion, project, name, len(idx.Versions), version)
	}
	v := &idx.Versions[version-1]
	if v.Withdrawn != nil {
		return *v, fmt.Errorf("version %d of %s/%s was withdrawn already at %s", version, project, name, v.Withdrawn.Format(time.RFC3339))
	}
	now := r.now().UTC()
	v.Withdrawn, v.Reason = &now, reason
	return *v, r.publishLayoutIndex(role, dir, idx, signers)
}

// TrustRoot returns the published trust root, or an empty one.
func (r *Repo) TrustRoot() (*evident.TrustRoot, error) {
	b, _, err := r.Target(Targets, evident.TrustRootTarget)
	if errors.Is(err, fs.ErrNotExist) {
		return &evident.TrustRoot{MediaType: evident.TrustRootMediaType}, nil
	}
	if err != nil {
		return nil, err
	}
	return evident.ParseTrustRoot(b)
}

// EditTrustRoot applies edit to the trust root and publishes the result;
// signers must hold the targets key and the online keys.
func (r *Repo) EditTrustRoot(edit func(*evident.TrustRoot) error, signers Signers) error {
	tr, err := r.TrustRoot()
	if err != nil {
		return err
	}
	if err := edit(tr); err != nil {
		return err
	}
	b, err := tr.Marshal()
	if err != nil {
		return err
	}
	if err := r.SetTarget(Targets, evident.TrustRootTarget, b, nil); err != nil {
		return err
	}
	return r.Publish(signers)
}

// Pick returns the version current at t: the last one published at or
// before t and not withdrawn; a zero t means the latest not withdrawn.
func (idx *LayoutIndex) Pick(t time.Time) (LayoutVersion, error) {
	if len(idx.Versions) == 0 {
		return LayoutVersion{}, fmt.Errorf("layout %s/%s has no versions", idx.Project, idx.Name)
	}
	var best *LayoutVersion
	for i := range idx.Versions {
		if idx.Versions[i].Withdrawn == nil && (t.IsZero() || !idx.Versions[i].Published.After(t)) {
			best = &idx.Versions[i]
		}
	}
	if best == nil && t.IsZero() {
		return LayoutVersion{}, fmt.Errorf("every version of layout %s/%s is withdrawn", idx.Project, idx.Name)
	}
	if best == nil {
		return LayoutVersion{}, fmt.Errorf("layout %s/%s had no version yet at %v (the first was published at %v)",
			idx.Project, idx.Name, t.UTC(), idx.Versions[0].Published)
	}
	return *best, nil
}
