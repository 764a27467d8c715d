package imagebuild

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Named is an image and the reference it is published as
// (REPOSITORY:TAG).
type Named struct {
	Ref   string
	Image v1.Image
}

// WriteLayout replaces dir with an OCI image layout holding the images,
// each annotated with its reference (org.opencontainers.image.ref.name),
// which `crane push`, skopeo (oci:DIR:REF) and podman read.
func WriteLayout(dir string, images []Named) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	for _, n := range images {
		if err := p.AppendImage(n.Image, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": n.Ref,
		})); err != nil {
			return fmt.Errorf("write %s to %s: %w", n.Ref, dir, err)
		}
	}
	return nil
}

// WriteTarball writes the images as one `docker save` archive, which
// `docker load`, `podman load` and `kind load image-archive` read.
func WriteTarball(file string, images []Named) error {
	refs := map[name.Reference]v1.Image{}
	for _, n := range images {
		tag, err := name.NewTag(n.Ref)
		if err != nil {
			return fmt.Errorf("image reference %q: %w", n.Ref, err)
		}
		refs[tag] = n.Image
	}
	if err := tarball.MultiRefWriteToFile(file, refs); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// Push pushes the image to ref with the credentials of the Docker config
// (~/.docker/config.json, $DOCKER_CONFIG) and returns the pushed
// reference pinned by digest (REPOSITORY@sha256:…).
func Push(img v1.Image, ref string, opts ...remote.Option) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	opts = append([]remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.Write(r, img, opts...); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("digest of %s: %w", ref, err)
	}
	return r.Context().Digest(d.String()).String(), nil
}

// Unpack writes the image's flattened filesystem under dir, as a
// container runtime would see it: regular files, directories and
// symbolic links, with their permission and sticky bits. Entries that would land
// outside dir are refused.
func Unpack(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read image filesystem: %w", err)
		}
		target := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if target != dir && !strings.HasPrefix(target, dir+string(filepath.Separator)) {
			return fmt.Errorf("image entry %q lies outside the root", hdr.Name)
		}
		if err := unpackEntry(tr, hdr, target); err != nil {
			return err
		}
	}
}

// unpackEntry writes one entry of the flattened image at target.
func unpackEntry(r io.Reader, hdr *tar.Header, target string) error {
	mode := hdr.FileInfo().Mode() & (os.ModePerm | os.ModeSticky)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		return os.Chmod(target, mode|0o700) // keep it writable for what follows and for cleanup
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(f, r); err != nil {
			_ = f.Close()
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		return f.Close()
	case tar.TypeSymlink:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		return os.Symlink(hdr.Linkname, target)
	default:
		return fmt.Errorf("unpack %s: entry type %q not supported", hdr.Name, hdr.Typeflag)
	}
}
