package imagebuild

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Meta is what both images are labelled with.
type Meta struct {
	Version, Revision, Source string
	// Created stamps the image and its files (SOURCE_DATE_EPOCH).
	Created time.Time
	// CABundle is the CA certificates file copied from this machine.
	CABundle string
}

// DefaultSource is the repository both images are built from.
const DefaultSource = "https://github.com/canarybot/canarybot"

// NVMLLibs are the libraries libnvidia-ml.so.1 links against beside libc.
// The NVIDIA container toolkit injects libnvidia-ml itself at run time,
// never these, so the gpu-agent image carries them.
func NVMLLibs() []string { return []string{"libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1"} }

// labels are the org.opencontainers.image.* annotations of an image.
func (m Meta) labels(title, description string) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": description,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.url":         m.Source,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
	}
	if m.Revision != "" {
		l["org.opencontainers.image.revision"] = m.Revision
	}
	return l
}

// env is every image's environment: the binaries' directory on PATH, the
// CA bundle, nonroot's home, and more.
func env(more ...string) []string {
	return append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + CABundle, "HOME=/home/nonroot"}, more...)
}

// CanarybotSpec is the canarybot image: the binary as
// /usr/local/bin/canarybot, its entrypoint, on the base layer, running as
// nonroot; if the binary is dynamically linked, with the glibc files it
// needs from this machine.
func CanarybotSpec(binary string, m Meta) (Spec, error) {
	arch, err := Arch(binary)
	if err != nil {
		return Spec{}, err
	}
	libs, err := SharedLibs(binary)
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Layers: [][]File{BaseFiles(m.CABundle), libs,
			{{Path: "/usr/local/bin/canarybot", Src: binary, Mode: 0o755}}},
		Entrypoint: []string{"/usr/local/bin/canarybot"},
		User:       fmt.Sprintf("%d:%d", NonRoot, NonRoot),
		Env:        env(), WorkingDir: "/home/nonroot", Ports: []string{"8080/tcp"},
		Labels:       m.labels("canarybot", "Progressive delivery of ML models through Git and Argo CD"),
		Created:      m.Created,
		Architecture: arch,
	}, nil
}

// GPUAgentSpec is the gpu-agent image: the cgo binary as
// /usr/local/bin/gpu-agent with the glibc files it and libnvidia-ml need
// (NVMLLibs), and /etc/debian_version so that the NVIDIA container
// toolkit mounts the driver's libraries into /usr/lib/<multiarch>, which
// the loader searches. A binary built without cgo (no NVML) gets no libs.
func GPUAgentSpec(binary string, m Meta) (Spec, error) {
	arch, err := Arch(binary)
	if err != nil {
		return Spec{}, err
	}
	libs, err := SharedLibs(binary, NVMLLibs()...)
	if err != nil {
		return Spec{}, err
	}
	if len(libs) > 0 {
		// Where the toolkit mounts the driver's libraries, and where its
		// ldconfig hook may write.
		libs = append(libs, File{Path: "/usr/lib/" + multiarch(arch), Dir: true, Mode: 0o755},
			File{Path: "/etc/ld.so.conf.d", Dir: true, Mode: 0o755})
		if _, err := os.Stat("/etc/debian_version"); err == nil {
			libs = append(libs, File{Path: "/etc/debian_version", Src: "/etc/debian_version", Mode: 0o644})
		} else if !errors.Is(err, os.ErrNotExist) {
			return Spec{}, fmt.Errorf("/etc/debian_version: %w", err)
		}
	}
	return Spec{
		Layers: [][]File{BaseFiles(m.CABundle), libs,
			{{Path: "/usr/local/bin/gpu-agent", Src: binary, Mode: 0o755}}},
		Entrypoint: []string{"/usr/local/bin/gpu-agent"},
		User:       fmt.Sprintf("%d:%d", NonRoot, NonRoot),
		Env:        env("NVIDIA_DRIVER_CAPABILITIES=utility"),
		WorkingDir: "/home/nonroot", Ports: []string{"9836/tcp"},
		Labels:       m.labels("canarybot-gpu-agent", "canarybot's per-node NVML exporter for GPU gates"),
		Created:      m.Created,
		Architecture: arch,
	}, nil
}

// multiarch is Debian's multiarch tuple for a GOARCH (amd64, arm64).
func multiarch(arch string) string {
	return map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
}

// SourceDateEpoch is $SOURCE_DATE_EPOCH as a time, or the Unix epoch
// when it is unset, so that the same inputs give the same image digest.
func SourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}
