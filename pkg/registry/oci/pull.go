package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
)

// MaxPullBytes bounds the model size Pull reads into memory.
const MaxPullBytes = 1 << 30

// Model is a pulled model artifact.
type Model struct {
	Config ModelConfig
	Files  map[string][]byte
}

// Pull fetches the model artifact at uri, which must be pinned
// (oci://host/path@sha256:…), and returns its files.
func Pull(ctx context.Context, uri string, opts ...Option) (*Model, error) {
	ref, err := artifact.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	if ref.Scheme != artifact.SchemeOCI {
		return nil, fmt.Errorf("pull %s: %w", uri, canary.Terminalf("not an oci:// reference"))
	}
	o := newOptions(opts)
	d, err := name.NewDigest(ref.Repository()+"@"+ref.Digest, o.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	img, err := remote.Image(d, o.remoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	if m.Config.MediaType != ConfigMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType {
		return nil, fmt.Errorf("pull %s: %w", uri, canary.Terminalf(
			"not a canarybot model artifact (config %s, %d layers)", m.Config.MediaType, len(m.Layers)))
	}
	if m.Layers[0].Size > MaxPullBytes {
		return nil, fmt.Errorf("pull %s: %w", uri, canary.Terminalf("layer is %d bytes, over %d", m.Layers[0].Size, MaxPullBytes))
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("pull %s: config: %w", uri, err)
	}
	model := &Model{}
	if err := json.Unmarshal(raw, &model.Config); err != nil {
		return nil, fmt.Errorf("pull %s: config: %w", uri, err)
	}
	layer, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	defer rc.Close()
	if model.Files, err = untarFiles(io.LimitReader(rc, MaxPullBytes)); err != nil {
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	return model, nil
}

// untarFiles reads the regular files of a tar stream.
func untarFiles(r io.Reader) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read layer: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := checkFileName(hdr.Name); err != nil {
			return nil, fmt.Errorf("read layer: %w", err)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, tr); err != nil {
			return nil, fmt.Errorf("read layer %s: %w", hdr.Name, err)
		}
		files[hdr.Name] = buf.Bytes()
	}
}
