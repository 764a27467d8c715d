// Command imagebuild packages bin/ binaries as canarybot's container
// images, without a Docker daemon (`make image` runs it; see
// internal/imagebuild): an OCI image layout and a `docker load` archive,
// optionally pushed.
//
//	imagebuild --canarybot bin/image/canarybot --gpu-agent bin/image/gpu-agent \
//	  --out bin/image --repo ghcr.io/canarybot --tag v1.2.3 [--push]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/canarybot/canarybot/internal/imagebuild"
)

// options are the command's flags.
type options struct {
	canarybot, gpuAgent, out, repo, tag string
	push, verify                        bool
	meta                                imagebuild.Meta
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(args []string, log io.Writer) error {
	o := options{}
	f := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	f.StringVar(&o.canarybot, "canarybot", "", "the canarybot binary to package (none: no canarybot image)")
	f.StringVar(&o.gpuAgent, "gpu-agent", "", "the gpu-agent binary to package (none: no gpu-agent image)")
	f.StringVar(&o.out, "out", "bin/image", "where to write oci/ (an OCI image layout) and images.tar (docker load)")
	f.StringVar(&o.repo, "repo", "ghcr.io/canarybot", "registry and path the images are named under: REPO/canarybot, REPO/gpu-agent")
	f.StringVar(&o.tag, "tag", "dev", "the images' tag")
	f.BoolVar(&o.push, "push", false, "push both images to REPO with the Docker config's credentials")
	f.BoolVar(&o.verify, "verify", true, "run each binary's version from the unpacked image, through its own loader and libraries (same architecture only)")
	f.StringVar(&o.meta.Version, "version", "dev", "org.opencontainers.image.version")
	f.StringVar(&o.meta.Revision, "revision", "", "org.opencontainers.image.revision (the commit)")
	f.StringVar(&o.meta.Source, "source", imagebuild.DefaultSource, "org.opencontainers.image.source")
	f.StringVar(&o.meta.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates to copy into the images")
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", f.Args())
	}
	created, err := imagebuild.SourceDateEpoch()
	if err != nil {
		return err
	}
	o.meta.Created = created
	return o.build(log)
}

// build builds the images, writes them and pushes them if asked.
func (o *options) build(log io.Writer) error {
	images, err := o.images(log)
	if err != nil {
		return err
	}
	if len(images) == 0 {
		return fmt.Errorf("nothing to build: give --canarybot, --gpu-agent or both")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", o.out, err)
	}
	layout := filepath.Join(o.out, "oci")
	fmt.Fprintf(log, "imagebuild: writing the OCI layout %s\n", layout)
	if err := imagebuild.WriteLayout(layout, images); err != nil {
		return err
	}
	archive := filepath.Join(o.out, "images.tar")
	fmt.Fprintf(log, "imagebuild: writing %s (docker load -i, kind load image-archive)\n", archive)
	if err := imagebuild.WriteTarball(archive, images); err != nil {
		return err
	}
	if !o.push {
		return nil
	}
	for _, n := range images {
		fmt.Fprintf(log, "imagebuild: pushing %s\n", n.Ref)
		pinned, err := imagebuild.Push(n.Image, n.Ref)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "imagebuild: pushed %s\n", pinned)
	}
	return nil
}

// images builds each image whose binary was given, saying what it holds.
func (o *options) images(log io.Writer) ([]imagebuild.Named, error) {
	var out []imagebuild.Named
	for _, b := range []struct {
		name, binary, versionArg string
		spec                     func(string, imagebuild.Meta) (imagebuild.Spec, error)
	}{
		{"canarybot", o.canarybot, "version", imagebuild.CanarybotSpec},
		{"gpu-agent", o.gpuAgent, "--version", imagebuild.GPUAgentSpec},
	} {
		if b.binary == "" {
			continue
		}
		spec, err := b.spec(b.binary, o.meta)
		if err != nil {
			return nil, fmt.Errorf("%s image: %w", b.name, err)
		}
		img, err := imagebuild.Build(spec)
		if err != nil {
			return nil, fmt.Errorf("%s image: %w", b.name, err)
		}
		ref := strings.TrimSuffix(o.repo, "/") + "/" + b.name + ":" + o.tag
		if err := describe(log, ref, img, spec); err != nil {
			return nil, err
		}
		if o.verify {
			if err := verify(log, img, spec, b.versionArg); err != nil {
				return nil, fmt.Errorf("%s image: %w", b.name, err)
			}
		}
		out = append(out, imagebuild.Named{Ref: ref, Image: img})
	}
	return out, nil
}

// describe prints the image's digest, compressed size and layers.
func describe(log io.Writer, ref string, img v1.Image, spec imagebuild.Spec) error {
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("%s: digest: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("%s: layers: %w", ref, err)
	}
	var total int64
	var sizes []string
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return fmt.Errorf("%s: layer size: %w", ref, err)
		}
		total += n
		sizes = append(sizes, mib(n))
	}
	var files int
	for _, l := range spec.Layers {
		files += len(l)
	}
	fmt.Fprintf(log, "imagebuild: %s %s, user %s, entrypoint %v, %d files, %s compressed (layers %s), created %s\n",
		ref, d, spec.User, spec.Entrypoint, files, mib(total), strings.Join(sizes, " + "), spec.Created.Format(time.RFC3339))
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// verify unpacks img and runs its entrypoint with arg (version) there,
// as a container would: a static binary directly, a dynamic one through
// the image's own loader and libraries. It is skipped for another
// architecture.
func verify(log io.Writer, img v1.Image, spec imagebuild.Spec, arg string) error {
	dir, err := os.MkdirTemp("", "imagebuild-verify-")
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := imagebuild.Unpack(img, dir); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	cmd, err := imagebuild.Command(dir, spec, arg)
	if err != nil {
		fmt.Fprintf(log, "imagebuild: not verified: %v\n", err)
		return nil
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("verify: %s %s from the unpacked image: %w\n%s", spec.Entrypoint[0], arg, err, out)
	}
	fmt.Fprintf(log, "imagebuild: verified: the unpacked image's %s %s says %q\n", spec.Entrypoint[0], arg, strings.TrimSpace(string(out)))
	return nil
}
