package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotation keys written on the manifest and layer.
const (
	annotationVersion = "org.opencontainers.image.version"
	annotationTitle   = "org.opencontainers.image.title"
	layerTitle        = "model.tar"
)

// ModelConfig is the artifact's config blob.
type ModelConfig struct {
	// Version is the tag the artifact was pushed under.
	Version string `json:"version"`
	// Files lists the layer's files, sorted by name.
	Files []FileEntry `json:"files"`
}

// FileEntry describes one file of the model.
type FileEntry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

// Push publishes files as a model artifact in repo (host/path) tagged
// version, and returns the manifest digest, "sha256:…". Pushing the same
// files under the same version again yields the same digest.
func Push(ctx context.Context, repo, version string, files map[string][]byte, opts ...Option) (string, error) {
	o := newOptions(opts)
	tag, err := name.NewTag(repo+":"+version, o.nameOptions()...)
	if err != nil {
		return "", fmt.Errorf("push %s:%s: %w", repo, version, err)
	}
	img, err := newModelImage(version, files)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", tag, err)
	}
	if err := remote.Write(tag, img, o.remoteOptions(ctx)...); err != nil {
		return "", fmt.Errorf("push %s: %w", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("push %s: %w", tag, err)
	}
	o.logger.InfoContext(ctx, "pushed model artifact", "tag", tag.String(), "digest", d.String(), "files", len(files))
	return d.String(), nil
}

// modelImage is a model artifact in memory. It implements
// partial.CompressedImageCore.
type modelImage struct {
	manifest []byte
	config   []byte
	layer    v1.Layer
	layerID  v1.Hash
}

// newModelImage builds the artifact for files.
func newModelImage(version string, files map[string][]byte) (v1.Image, error) {
	if len(files) == 0 {
		return nil, errors.New("no files")
	}
	layerBytes, entries, err := tarFiles(files)
	if err != nil {
		return nil, err
	}
	config, err := json.Marshal(ModelConfig{Version: version, Files: entries})
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	layer := static.NewLayer(layerBytes, LayerMediaType)
	layerID, err := layer.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest layer: %w", err)
	}
	configID, _, err := v1.SHA256(bytes.NewReader(config))
	if err != nil {
		return nil, fmt.Errorf("digest config: %w", err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: ConfigMediaType, Size: int64(len(config)), Digest: configID},
		Layers: []v1.Descriptor{{
			MediaType:   LayerMediaType,
			Size:        int64(len(layerBytes)),
			Digest:      layerID,
			Annotations: map[string]string{annotationTitle: layerTitle},
		}},
		Annotations: map[string]string{annotationVersion: version},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return partial.CompressedToImage(&modelImage{manifest: raw, config: config, layer: layer, layerID: layerID})
}

func (m *modelImage) RawConfigFile() ([]byte, error) { return m.config, nil }

func (m *modelImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (m *modelImage) RawManifest() ([]byte, error) { return m.manifest, nil }

func (m *modelImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == m.layerID {
		return m.layer, nil
	}
	return nil, fmt.Errorf("blob %s is not a layer of this artifact", h)
}

// tarFiles writes files into a deterministic tar and lists them.
func tarFiles(files map[string][]byte) ([]byte, []FileEntry, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		if err := checkFileName(n); err != nil {
			return nil, nil, err
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := make([]FileEntry, 0, len(names))
	for _, n := range names {
		b := files[n]
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     n,
			Mode:     0o644,
			Size:     int64(len(b)),
			ModTime:  time.Unix(0, 0),
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, nil, fmt.Errorf("tar %s: %w", n, err)
		}
		if _, err := tw.Write(b); err != nil {
			return nil, nil, fmt.Errorf("tar %s: %w", n, err)
		}
		sum := sha256.Sum256(b)
		entries = append(entries, FileEntry{Name: n, Size: int64(len(b)), Digest: "sha256:" + hex.EncodeToString(sum[:])})
	}
	if err := tw.Close(); err != nil {
		return nil, nil, fmt.Errorf("tar: %w", err)
	}
	return buf.Bytes(), entries, nil
}

// checkFileName accepts clean relative slash paths.
func checkFileName(n string) error {
	switch {
	case n == "":
		return errors.New("empty file name")
	case path.IsAbs(n) || path.Clean(n) != n || n == "." || n == ".." || strings.HasPrefix(n, "../"):
		return fmt.Errorf("file name %q is not a clean relative path", n)
	case strings.ContainsAny(n, "\\\x00"):
		return fmt.Errorf("file name %q has a backslash or NUL", n)
	}
	return nil
}
