package imagebuild

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// SharedLibs lists the files a dynamically linked binary needs from this
// machine to start in an image FROM scratch, as ldd would find them: its
// program interpreter (the dynamic loader) and every DT_NEEDED library,
// recursively, each looked up in the multiarch and standard library
// directories and copied to the path where it was found (symbolic links
// followed), which the loader of a Debian-style glibc searches by default.
// extra names more libraries to include with theirs, for what the binary
// opens with dlopen at run time (NVML's own dependencies).
//
// A statically linked binary needs nothing: SharedLibs returns nil.
func SharedLibs(binary string, extra ...string) ([]File, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", binary, err)
	}
	defer f.Close()
	interp, err := interpreter(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("%s: dynamic section: %w", binary, err)
	}
	if interp == "" && len(needed) == 0 {
		return nil, nil
	}
	dirs, err := libDirs(f.Machine)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	files, err := resolveLibs(dirs, append(needed, extra...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	if interp != "" && !slices.ContainsFunc(files, func(f File) bool { return f.Path == interp }) {
		files = append(files, File{Path: interp, Src: interp, Mode: 0o755})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// Arch is the binary's architecture as GOARCH names it (amd64, arm64),
// the platform of the image that holds it.
func Arch(binary string) (string, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", binary, err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("%s: machine %v: only x86-64 and arm64 are supported", binary, f.Machine)
}

// interpreter is the binary's PT_INTERP, "" for a static binary.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}

// libDirs are the directories a Debian-style glibc loader searches with
// no ld.so.cache, for the binary's machine.
func libDirs(m elf.Machine) ([]string, error) {
	tuple := multiarch(map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[m])
	if tuple == "" {
		return nil, fmt.Errorf("machine %v: only x86-64 and arm64 are supported", m)
	}
	return []string{"/lib/" + tuple, "/usr/lib/" + tuple, "/lib64", "/usr/lib64", "/lib", "/usr/lib"}, nil
}

// resolveLibs finds each library and, recursively, what it needs.
func resolveLibs(dirs, names []string) ([]File, error) {
	var files []File
	seen := map[string]bool{}
	for len(names) > 0 {
		name := names[0]
		names = names[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		p, err := findLib(dirs, name)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: p, Src: p, Mode: 0o755})
		lf, err := elf.Open(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		more, err := lf.ImportedLibraries()
		_ = lf.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: dynamic section: %w", p, err)
		}
		names = append(names, more...)
	}
	return files, nil
}

// findLib is the first dirs/name that exists.
func findLib(dirs []string, name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range dirs {
		p := path.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", p, err)
		}
	}
	return "", fmt.Errorf("library %s not found in %s", name, strings.Join(dirs, ", "))
}
