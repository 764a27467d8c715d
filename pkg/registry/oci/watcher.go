package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
)

// Watcher implements canary.ArtifactSource over an OCI registry: it lists
// the plan's repository's tags, picks one by the plan's tag policy, and
// proposes it pinned by digest. Tags only select; the digest is what the
// plan, the state and every commit carry.
//
// A Watcher remembers the digest each tag last resolved to, and logs once
// at Warn when a tag moves to another digest; canary.Decide reports such a
// tag and never deploys it.
//
// When the plan sets spec.model.source.oci.verify, the picked artifact is
// proposed only if its cosign signature verifies (see Verify). A refused
// artifact is not proposed, its reason is logged once per digest at Warn
// and kept for Refusal, and it is checked again on the next look, so that
// a signature attached later is found.
type Watcher struct {
	o *options

	mu sync.Mutex
	// seen maps "repository:tag" to the digest it last resolved to.
	seen map[string]string
	// verified holds "digest settings-fingerprint" pairs that verified.
	verified map[string]bool
	// warned maps "plan digest" to the refusal reason last logged for it.
	warned map[string]string
	// refusal maps a plan to why its last look proposed nothing.
	refusal map[string]error
}

var _ canary.ArtifactSource = (*Watcher)(nil)

// NewWatcher returns a Watcher. By default it is anonymous and logs nothing.
func NewWatcher(opts ...Option) *Watcher {
	return &Watcher{o: newOptions(opts), seen: map[string]string{}, verified: map[string]bool{},
		warned: map[string]string{}, refusal: map[string]error{}}
}

// Latest returns the tag of plan.Spec.Model.Source.OCI.Repository that its
// policy picks, as oci://host/path@sha256:… with the tag as Version, or nil
// when no tag qualifies or the repository does not exist yet.
//
// Policies (canary.OCIPolicy…), after tagRegex, when set, keeps only the
// tags it matches:
//
//   - semver (default): the highest semantic version within the Semver
//     constraint. Tags that are not versions ("latest", "main") are
//     ignored; a leading "v" is allowed. As in Masterminds/semver, a
//     prerelease qualifies only when the constraint names one. Of two tags
//     with the same version ("1.0.0", "v1.0.0") the first in byte order wins.
//   - regex: the highest first capture group of tagRegex (or whole tag),
//     numerically when decimal; see highestByRegex.
//   - latest: the newest by creation time, read from the manifest
//     annotation CreatedAnnotation (default org.opencontainers.image.created,
//     RFC 3339), else from the config blob's "created" field, as Docker
//     image configs have. Tags with neither are ignored. At most
//     MaxTimeLookups tags are inspected.
//
// With spec.model.source.oci.verify set, a tag whose artifact is refused
// yields nil; Refusal says why.
//
// A missing source, a bad repository name or a bad policy is a terminal
// error.
func (w *Watcher) Latest(ctx context.Context, plan *canary.CanaryPlan) (*canary.Artifact, error) {
	repo, sel, err := w.source(plan)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(repo, w.o.remoteOptions(ctx)...)
	if isNotFound(err) {
		w.o.logger.DebugContext(ctx, "repository has no tags yet", "repository", repo.String())
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	tag, digest, err := w.pick(ctx, repo, sel, tags)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		w.setRefusal(plan.Metadata.Name, nil)
		return nil, nil
	}
	ref := artifact.Ref{Scheme: artifact.SchemeOCI, Host: repo.RegistryStr(), Path: repo.RepositoryStr(), Digest: digest}
	pinned, err := artifact.Parse(ref.String())
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", repo.Tag(tag), canary.Terminal(err))
	}
	w.noteDigest(ctx, repo, tag, digest)
	if ok, err := w.vouch(ctx, plan, tag, repo.Digest(digest)); !ok {
		return nil, err
	}
	return &canary.Artifact{URI: pinned.String(), Version: tag}, nil
}

// Verify checks that the pinned artifact uri (oci://host/path@sha256:…)
// carries a cosign signature that the plan's spec.model.source.oci.verify
// accepts: a Sigstore bundle attached as an OCI referrer (cosign v3's
// format; the legacy sha256-<hex>.sig tag is not read), verified with
// sigstore-go over the manifest digest, signed by the plan's public key
// or by its keyless identity and issuer. A plan without verify accepts
// any artifact.
//
// An error that IsUnverified reports is the refusal and its reason:
// ErrUnsigned, ErrBadSignature or ErrWrongSigner. A bad plan or URI is a
// terminal error; others (the registry, a trusted root file) are
// retryable.
func (w *Watcher) Verify(ctx context.Context, plan *canary.CanaryPlan, uri string) error {
	if _, _, err := w.source(plan); err != nil {
		return err
	}
	v := plan.Spec.Model.Source.OCI.Verify
	if v == nil {
		return nil
	}
	ref, err := artifact.Parse(uri)
	if err == nil && (ref.Scheme != artifact.SchemeOCI || ref.Digest == "") {
		err = errors.New("not an oci://…@sha256:… reference")
	}
	if err != nil {
		return canary.Terminal(fmt.Errorf("verify %s: %w", uri, err))
	}
	dig, err := name.NewDigest(ref.Host+"/"+ref.Path+"@"+ref.Digest, w.o.nameOptions()...)
	if err != nil {
		return canary.Terminal(fmt.Errorf("verify %s: %w", uri, err))
	}
	t, err := newTrust(v)
	if err != nil {
		return fmt.Errorf("plan %q: %w", plan.Metadata.Name, err)
	}
	return verifyDigest(ctx, w.o, dig, t)
}

// Refusal returns why the plan's last look proposed nothing although a
// tag qualified: its artifact's provenance was refused (IsUnverified
// reports the error). It is nil when the last look proposed an artifact
// or found no tag, and before any look.
func (w *Watcher) Refusal(plan string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refusal[plan]
}

// vouch verifies the provenance of the artifact picked for tag when the
// plan asks for it, and reports whether it may be proposed. A refusal is
// false with a nil error; an error means it could not be checked.
func (w *Watcher) vouch(ctx context.Context, plan *canary.CanaryPlan, tag string, dig name.Digest) (bool, error) {
	v := plan.Spec.Model.Source.OCI.Verify
	if v == nil {
		w.setRefusal(plan.Metadata.Name, nil)
		return true, nil
	}
	key := dig.DigestStr() + " " + fingerprint(v)
	w.mu.Lock()
	done := w.verified[key]
	w.mu.Unlock()
	if done {
		w.setRefusal(plan.Metadata.Name, nil)
		return true, nil
	}
	t, err := newTrust(v)
	if err != nil {
		return false, fmt.Errorf("plan %q: %w", plan.Metadata.Name, err)
	}
	err = verifyDigest(ctx, w.o, dig, t)
	if err != nil && !IsUnverified(err) {
		return false, fmt.Errorf("verify %s: %w", dig, err)
	}
	if err != nil {
		w.refuse(ctx, plan.Metadata.Name, tag, dig, err)
		return false, nil
	}
	w.mu.Lock()
	w.verified[key] = true
	w.refusal[plan.Metadata.Name] = nil
	w.mu.Unlock()
	w.o.logger.InfoContext(ctx, "signature verified", "plan", plan.Metadata.Name, "tag", tag,
		"artifact", dig.String(), "signer", t.want)
	return true, nil
}

// refuse records why the artifact picked for a plan is not proposed, and
// logs it at Warn once per digest and reason.
func (w *Watcher) refuse(ctx context.Context, plan, tag string, dig name.Digest, why error) {
	w.mu.Lock()
	w.refusal[plan] = fmt.Errorf("tag %s (%s): %w", tag, dig.DigestStr(), why)
	key := plan + " " + dig.String()
	said := w.warned[key] == why.Error()
	w.warned[key] = why.Error()
	w.mu.Unlock()
	if !said {
		w.o.logger.WarnContext(ctx, "not proposing an artifact whose provenance is refused",
			"plan", plan, "tag", tag, "artifact", dig.String(), "reason", why.Error())
	}
}

// setRefusal records the plan's refusal, nil for none.
func (w *Watcher) setRefusal(plan string, err error) {
	w.mu.Lock()
	w.refusal[plan] = err
	w.mu.Unlock()
}

// pick applies the policy to tags and returns the chosen tag and the
// digest it points at now, or "" when none qualifies.
func (w *Watcher) pick(ctx context.Context, repo name.Repository, sel selector, tags []string) (string, string, error) {
	cands := sel.candidates(tags)
	var best string
	switch sel.policy {
	case canary.OCIPolicyLatest:
		return w.pickLatest(ctx, repo, sel, cands)
	case canary.OCIPolicyRegex:
		best = highestByRegex(cands, sel.filter)
	default:
		var skipped int
		best, skipped = highestSemver(cands, sel.constraint)
		w.o.logger.DebugContext(ctx, "listed tags", "repository", repo.String(), "tags", len(tags), "ignored", skipped)
	}
	w.o.logger.DebugContext(ctx, "selected tag", "repository", repo.String(), "policy", sel.policy, "tag", best)
	if best == "" {
		return "", "", nil
	}
	d, err := w.resolve(ctx, repo.Tag(best))
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", repo.Tag(best), err)
	}
	return best, d.String(), nil
}

// pickLatest reads each candidate's creation time and returns the newest,
// pinned by the digest the time was read from.
func (w *Watcher) pickLatest(ctx context.Context, repo name.Repository, sel selector, cands []string) (string, string, error) {
	if len(cands) > MaxTimeLookups {
		return "", "", fmt.Errorf("policy latest: %d tags of %s to inspect, over %d; narrow them with tagRegex",
			len(cands), repo, MaxTimeLookups)
	}
	ts := make([]stamped, 0, len(cands))
	for _, t := range cands {
		s, err := w.created(ctx, repo.Tag(t), sel.annotation)
		if err != nil {
			return "", "", fmt.Errorf("read creation time of %s: %w", repo.Tag(t), err)
		}
		if s.created.IsZero() {
			w.o.logger.DebugContext(ctx, "tag has no creation time; ignored", "repository", repo.String(), "tag", t)
		}
		ts = append(ts, s)
	}
	best, ok := newest(ts)
	if !ok {
		return "", "", nil
	}
	return best.tag, best.digest, nil
}

// created reads a tag's manifest and returns its creation time (zero when
// it has none) with the manifest's digest.
func (w *Watcher) created(ctx context.Context, tag name.Tag, annotation string) (stamped, error) {
	desc, err := remote.Get(tag, w.o.remoteOptions(ctx)...)
	if err != nil {
		return stamped{}, err
	}
	s := stamped{tag: tag.TagStr(), digest: desc.Digest.String()}
	var m struct {
		Annotations map[string]string `json:"annotations"`
		Config      *v1.Descriptor    `json:"config"`
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return stamped{}, canary.Terminal(fmt.Errorf("decode manifest %s: %w", desc.Digest, err))
	}
	if v, ok := m.Annotations[annotation]; ok {
		if s.created, err = time.Parse(time.RFC3339, v); err != nil {
			w.o.logger.DebugContext(ctx, "creation annotation is not RFC 3339; ignored", "tag", tag.String(),
				"annotation", annotation, "value", v)
		}
		if !s.created.IsZero() {
			return s, nil
		}
	}
	if m.Config == nil || !desc.MediaType.IsImage() {
		return s, nil
	}
	img, err := desc.Image()
	if err != nil {
		return stamped{}, err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return stamped{}, fmt.Errorf("read config of %s: %w", desc.Digest, err)
	}
	var cfg struct {
		Created time.Time `json:"created"`
	}
	if json.Unmarshal(raw, &cfg) == nil {
		s.created = cfg.Created
	}
	return s, nil
}

// noteDigest logs once when a tag resolves to another digest than before.
func (w *Watcher) noteDigest(ctx context.Context, repo name.Repository, tag, digest string) {
	key := repo.String() + ":" + tag
	w.mu.Lock()
	old, ok := w.seen[key]
	w.seen[key] = digest
	w.mu.Unlock()
	if ok && old != digest {
		w.o.logger.WarnContext(ctx, "tag moved to another digest; canarybot reports it and never deploys a moved tag",
			"repository", repo.String(), "tag", tag, "from", old, "to", digest)
	}
}

// source reads and validates the plan's OCI source.
func (w *Watcher) source(plan *canary.CanaryPlan) (name.Repository, selector, error) {
	if plan == nil || plan.Spec.Model.Source.OCI == nil {
		planName := ""
		if plan != nil {
			planName = plan.Metadata.Name
		}
		return name.Repository{}, selector{}, canary.Terminal(fmt.Errorf(
			"%w: plan %q has no spec.model.source.oci", canary.ErrInvalidPlan, planName))
	}
	src := plan.Spec.Model.Source.OCI
	repo, err := name.NewRepository(src.Repository, w.o.nameOptions()...)
	if err != nil {
		return name.Repository{}, selector{}, canary.Terminal(fmt.Errorf(
			"%w: plan %q: repository %q: %w", canary.ErrInvalidPlan, plan.Metadata.Name, src.Repository, err))
	}
	sel, err := newSelector(src)
	if err != nil {
		return name.Repository{}, selector{}, canary.Terminal(fmt.Errorf(
			"%w: plan %q: %w", canary.ErrInvalidPlan, plan.Metadata.Name, err))
	}
	return repo, sel, nil
}

// resolve returns the manifest digest a tag points at now. It asks with
// HEAD and falls back to GET for registries that answer HEAD badly.
func (w *Watcher) resolve(ctx context.Context, tag name.Tag) (v1.Hash, error) {
	opts := w.o.remoteOptions(ctx)
	desc, err := remote.Head(tag, opts...)
	if err == nil {
		return desc.Digest, nil
	}
	if ctx.Err() != nil {
		return v1.Hash{}, err
	}
	w.o.logger.DebugContext(ctx, "HEAD failed; trying GET", "tag", tag.String(), "error", err)
	got, gerr := remote.Get(tag, opts...)
	if gerr != nil {
		return v1.Hash{}, gerr
	}
	return got.Digest, nil
}

// isNotFound reports whether err says the repository does not exist.
func isNotFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}
