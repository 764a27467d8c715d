// Package imagebuild assembles canarybot's container images without a
// Docker daemon or a base image pulled from a registry: every layer is
// written here, as a tar of files taken from the build machine, and the
// image is put together with go-containerregistry. `make image` runs it
// through its command, internal/imagebuild/cmd/imagebuild.
//
// An image is FROM scratch: a base layer (passwd and group entries for the
// nonroot user 65532, its home, /tmp, the CA bundle), for a dynamically
// linked binary a layer with the glibc files its loader needs (found by
// reading the ELF file, as ldd would), and the binary itself.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRoot is the user and group every image runs as: distroless's
// "nonroot", which Kubernetes' runAsNonRoot accepts because it is numeric.
const NonRoot = 65532

// File is one entry of a layer.
type File struct {
	// Path is where it lies in the image: absolute, slash-separated.
	Path string
	// Src is a file on the build machine to copy (symbolic links followed);
	// Data is the content when Src is empty. Both empty with Dir: a
	// directory.
	Src  string
	Data []byte
	Dir  bool
	// Mode holds the permission bits (0o755, 0o644, 1777 for /tmp).
	Mode     int64
	UID, GID int
}

// Spec describes one image.
type Spec struct {
	// Layers are applied in order; a layer with no files is skipped.
	Layers     [][]File
	Entrypoint []string
	Cmd        []string
	// User is "UID:GID"; numeric so that runAsNonRoot can check it.
	User       string
	Env        []string
	WorkingDir string
	Labels     map[string]string
	// Ports are exposed ports such as "8080/tcp".
	Ports []string
	// Created is the image's and every file's time, fixed for a
	// reproducible image (SOURCE_DATE_EPOCH).
	Created time.Time
	// Architecture is GOARCH's name for the platform, e.g. amd64.
	Architecture string
}

// Build assembles the image: every layer, the config and OCI media types.
func Build(s Spec) (v1.Image, error) {
	if s.Architecture == "" {
		return nil, fmt.Errorf("imagebuild: no architecture")
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i, files := range s.Layers {
		if len(files) == 0 {
			continue
		}
		l, err := Layer(files, s.Created)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		h := v1.History{Created: v1.Time{Time: s.Created}, CreatedBy: "imagebuild: " + summary(files)}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: h, MediaType: types.OCILayer}); err != nil {
			return nil, fmt.Errorf("append layer %d: %w", i, err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: s.Created}
	cf.OS, cf.Architecture = "linux", s.Architecture
	cf.Config = v1.Config{Entrypoint: s.Entrypoint, Cmd: s.Cmd, User: s.User, Env: s.Env,
		WorkingDir: s.WorkingDir, Labels: s.Labels}
	if len(s.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range s.Ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// summary names a layer's files for the image history.
func summary(files []File) string {
	var names []string
	for _, f := range files {
		if !f.Dir {
			names = append(names, f.Path)
		}
	}
	if len(names) > 4 {
		names = append(names[:4], fmt.Sprintf("and %d more", len(names)-4))
	}
	return "COPY " + strings.Join(names, " ")
}

// Layer writes files into one gzip-compressed layer, parent directories
// first (root-owned, 0755, unless listed), every entry stamped with mtime.
// The layer is held in memory and compressed once.
func Layer(files []File, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	written := map[string]bool{}
	for _, f := range withParents(files) {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("%q: want a clean absolute path", f.Path)
		}
		if written[f.Path] {
			return nil, fmt.Errorf("%s: listed twice", f.Path)
		}
		written[f.Path] = true
		if err := writeEntry(tw, f, mtime); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompressedCaching, tarball.WithMediaType(types.OCILayer))
}

// withParents adds a directory entry for every missing parent and sorts
// the entries so that each directory comes before what it holds.
func withParents(files []File) []File {
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Path] = true
	}
	out := slices.Clone(files)
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "/" && !listed[dir]; dir = path.Dir(dir) {
			listed[dir] = true
			out = append(out, File{Path: dir, Dir: true, Mode: 0o755})
		}
	}
	slices.SortStableFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// writeEntry writes one file or directory; a regular file's content comes
// from Src (read through symbolic links) or Data.
func writeEntry(tw *tar.Writer, f File, mtime time.Time) error {
	name := strings.TrimPrefix(f.Path, "/")
	hdr := &tar.Header{Name: name, Mode: f.Mode, Uid: f.UID, Gid: f.GID, ModTime: mtime, Format: tar.FormatPAX}
	if f.Dir {
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		return nil
	}
	data := f.Data
	if f.Src != "" {
		b, err := os.ReadFile(f.Src)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		data = b
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	return nil
}

// BaseFiles are the files of a distroless-style base: root and nonroot in
// /etc/passwd and /etc/group, nonroot's home, a world-writable /tmp, and
// the CA bundle at caBundle on this machine as
// /etc/ssl/certs/ca-certificates.crt (empty caBundle: none).
func BaseFiles(caBundle string) []File {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRoot)
	files := []File{
		{Path: "/etc/passwd", Data: []byte(passwd), Mode: 0o644},
		{Path: "/etc/group", Data: []byte(group), Mode: 0o644},
		{Path: "/home/nonroot", Dir: true, Mode: 0o700, UID: NonRoot, GID: NonRoot},
		{Path: "/root", Dir: true, Mode: 0o700},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
	}
	if caBundle != "" {
		files = append(files, File{Path: CABundle, Src: caBundle, Mode: 0o644})
	}
	return files
}

// CABundle is where the images hold the CA certificates, the path Go's
// crypto/x509 tries first on Linux.
const CABundle = "/etc/ssl/certs/ca-certificates.crt"
