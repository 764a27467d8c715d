package gpu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Where a GPU process's Kubernetes pod is found on a node, by default.
const (
	// DefaultProcRoot is the host's /proc. In a container, mount the
	// host's /proc elsewhere (e.g. /host/proc) and pass WithProcRoot.
	DefaultProcRoot = "/proc"
	// DefaultPodsLogDir is where the kubelet keeps one directory per pod,
	// named <namespace>_<pod>_<uid>.
	DefaultPodsLogDir = "/var/log/pods"
)

// WithProcRoot sets the directory holding the host's /proc, from which
// processes are mapped to pods through /proc/<pid>/cgroup; "" turns the
// mapping off. DefaultProcRoot by default.
func WithProcRoot(dir string) Option {
	return func(s *settings) { s.procRoot = dir }
}

// WithPodsLogDir sets the kubelet's pod log directory, whose entries
// name each pod UID's namespace and pod; "" leaves names unknown.
// DefaultPodsLogDir by default.
func WithPodsLogDir(dir string) Option {
	return func(s *settings) { s.podsLogDir = dir }
}

// podUIDOfPID returns the UID of the pod that process pid runs in, read
// from <procRoot>/<pid>/cgroup. It returns "" without an error when the
// process is gone or is not in a Kubernetes pod.
func podUIDOfPID(procRoot string, pid uint32) (string, error) {
	p := filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "cgroup")
	b, err := os.ReadFile(p)
	// ESRCH: the process exited between the open and the read.
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cgroup of pid %d: %w", pid, err)
	}
	return PodUIDFromCgroup(b), nil
}

// PodUIDFromCgroup finds the Kubernetes pod UID in the contents of a
// /proc/<pid>/cgroup file, or returns "". It understands the cgroupfs
// driver's path segment pod<uid> (cgroup v1 or v2, e.g.
// "/kubepods/burstable/pod1b2c…/<container>") and the systemd driver's
// kubepods[-<qos>]-pod<uid_with_underscores>.slice (e.g.
// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c_….slice/cri-containerd-….scope").
// Paths relative to another cgroup namespace ("/../../kubepods-…",
// "/../../burstable/pod<uid>/…") work too.
func PodUIDFromCgroup(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controllers:path; the path may itself hold ':'.
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if uid := podUIDFromPath(parts[2]); uid != "" {
			return uid
		}
	}
	return ""
}

// podUIDFromPath finds the pod UID in one cgroup path, or returns "".
func podUIDFromPath(path string) string {
	segs := strings.Split(path, "/")
	kube := false
	for _, seg := range segs {
		// ".." climbs out of the reader's cgroup namespace, which for the
		// agent is inside kubepods too.
		if strings.HasPrefix(seg, "kubepods") || seg == ".." {
			kube = true
		}
		if !kube {
			continue
		}
		if uid, ok := strings.CutPrefix(seg, "pod"); ok && validPodUID(uid) {
			return uid
		}
		if name, ok := strings.CutSuffix(seg, ".slice"); ok && strings.HasPrefix(name, "kubepods") {
			if i := strings.LastIndex(name, "-pod"); i >= 0 {
				if uid := strings.ReplaceAll(name[i+len("-pod"):], "_", "-"); validPodUID(uid) {
					return uid
				}
			}
		}
	}
	return ""
}

// validPodUID reports whether s looks like a pod UID: a UUID, or the 32
// hex digits of a static pod's config hash.
func validPodUID(s string) bool {
	if len(s) != 32 && len(s) != 36 {
		return false
	}
	for _, r := range s {
		if r != '-' && !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

// podRef names a pod.
type podRef struct{ namespace, name string }

// podsByUID reads the kubelet's pod log directory, whose entries are
// named <namespace>_<pod>_<uid>, into a map from UID to pod. A missing
// directory gives an empty map; entries of another shape are skipped.
func podsByUID(dir string) (map[string]podRef, error) {
	pods := map[string]podRef{}
	if dir == "" {
		return pods, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return pods, nil
	}
	if err != nil {
		return pods, fmt.Errorf("read pod log directory %s: %w", dir, err)
	}
	for _, e := range entries {
		// Namespaces and pod names are DNS names: they hold no '_'.
		parts := strings.Split(e.Name(), "_")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !validPodUID(parts[2]) {
			continue
		}
		pods[parts[2]] = podRef{namespace: parts[0], name: parts[1]}
	}
	return pods, nil
}
