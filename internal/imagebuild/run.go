package imagebuild

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Command runs the entrypoint of an image unpacked at root with args, as
// close to the container as this machine allows without one: a static
// binary as it is; a dynamic one through the image's own loader, with the
// image's library directories only. It first asks that loader which file
// each library resolves to and fails if any lies outside root, so a
// library missing from the image is not made up for by this machine's.
// An image for another architecture cannot run here: an error.
func Command(root string, spec Spec, args ...string) (*exec.Cmd, error) {
	if spec.Architecture != runtime.GOARCH {
		return nil, fmt.Errorf("a %s image cannot run on this %s machine", spec.Architecture, runtime.GOARCH)
	}
	if len(spec.Entrypoint) == 0 {
		return nil, fmt.Errorf("the image has no entrypoint")
	}
	bin := filepath.Join(root, spec.Entrypoint[0])
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", bin, err)
	}
	interp, err := interpreter(f)
	machine := f.Machine
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	if interp == "" {
		return exec.Command(bin, append(spec.Entrypoint[1:], args...)...), nil
	}
	dirs, err := libDirs(machine)
	if err != nil {
		return nil, err
	}
	var libPath []string
	for _, d := range dirs {
		libPath = append(libPath, filepath.Join(root, d))
	}
	loader := []string{filepath.Join(root, interp), "--inhibit-cache", "--library-path", strings.Join(libPath, ":")}
	list, err := exec.Command(loader[0], append(loader[1:], "--list", bin)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s --list %s: %w\n%s", loader[0], bin, err, list)
	}
	if err := resolvedInside(root, string(list)); err != nil {
		return nil, err
	}
	return exec.Command(loader[0], append(append(loader[1:], bin), append(spec.Entrypoint[1:], args...)...)...), nil
}

// resolvedInside checks each "NAME => PATH" line of the loader's --list.
func resolvedInside(root, list string) error {
	s := bufio.NewScanner(strings.NewReader(list))
	for s.Scan() {
		_, target, ok := strings.Cut(s.Text(), " => ")
		if !ok {
			continue
		}
		path, _, _ := strings.Cut(strings.TrimSpace(target), " ")
		if path == "not" || !strings.HasPrefix(path, root+string(filepath.Separator)) {
			return fmt.Errorf("the image lacks a library: %s", strings.TrimSpace(s.Text()))
		}
	}
	return s.Err()
}
