//go:build cgo

package gpu

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/canarybot/canarybot/pkg/gpu/gputest"
)

const (
	uidA = "1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809"
	uidB = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9"
	// uidStatic is a static pod's UID: its config hash, without dashes.
	uidStatic = "6f1d2c3b4a5968778695a4b3c2d1e0f9"
)

func TestPodUIDFromCgroup(t *testing.T) {
	underscored := strings.ReplaceAll(uidA, "-", "_")
	for _, tc := range []struct {
		name, cgroup, want string
	}{
		{"v1 cgroupfs guaranteed", "12:memory:/kubepods/pod" + uidA + "/3f9c0e\n11:cpu,cpuacct:/kubepods/pod" + uidA + "/3f9c0e\n", uidA},
		{"v1 cgroupfs burstable", "5:devices:/kubepods/burstable/pod" + uidB + "/cid\n", uidB},
		{"v1 after non-kube lines", "1:name=systemd:/user.slice\n4:pids:/kubepods/besteffort/pod" + uidA + "/cid\n", uidA},
		{"v2 systemd burstable", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + underscored + ".slice/cri-containerd-9f2e.scope\n", uidA},
		{"v2 systemd besteffort", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + underscored + ".slice/crio-1.scope\n", uidA},
		{"v2 systemd guaranteed", "0::/kubepods.slice/kubepods-pod" + underscored + ".slice/cri-containerd-1.scope\n", uidA},
		{"v2 cgroupfs", "0::/kubepods/burstable/pod" + uidB + "/cid\n", uidB},
		{"v2 seen from another cgroup namespace", "0::/../../kubepods-besteffort-pod" + underscored + ".slice/cri-containerd-1.scope\n", uidA},
		{"v1 cgroupfs seen from another cgroup namespace", "0::/../../../burstable/pod" + uidB + "/cid\n", uidB},
		{"static pod", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidStatic + ".slice/x.scope\n", uidStatic},
		{"a colon in the path", "0::/kubepods/pod" + uidB + "/odd:name\n", uidB},
		{"host process", "0::/system.slice/containerd.service\n", ""},
		{"pod-like segment outside kubepods", "0::/machine.slice/pod" + uidA + "/x\n", ""},
		{"not a UID", "0::/kubepods/burstable/podnotauid/cid\n", ""},
		{"malformed lines", "garbage\n\n0:\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodUIDFromCgroup([]byte(tc.cgroup)); got != tc.want {
				t.Errorf("PodUIDFromCgroup(%q) = %q, want %q", tc.cgroup, got, tc.want)
			}
		})
	}
}

// fakeHost is a temp proc root and kubelet pod log directory.
type fakeHost struct{ proc, pods string }

func newFakeHost(t *testing.T) fakeHost {
	t.Helper()
	h := fakeHost{proc: filepath.Join(t.TempDir(), "proc"), pods: filepath.Join(t.TempDir(), "pods")}
	for _, d := range []string{h.proc, h.pods} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// process writes /proc/<pid>/cgroup.
func (h fakeHost) process(t *testing.T, pid int, cgroup string) {
	t.Helper()
	dir := filepath.Join(h.proc, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o444); err != nil {
		t.Fatal(err)
	}
}

// podDir makes one of the kubelet's pod log directories, or any entry.
func (h fakeHost) podDir(t *testing.T, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(h.pods, name, "main"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotProcessesWithPods(t *testing.T) {
	h := newFakeHost(t)
	h.process(t, 1001, "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"+
		strings.ReplaceAll(uidA, "-", "_")+".slice/cri-containerd-aa.scope\n")
	h.process(t, 1002, "7:memory:/kubepods/pod"+uidB+"/bb\n")
	h.process(t, 1003, "0::/system.slice/dcgm.service\n")
	// 1004 has exited: no /proc entry.
	h.podDir(t, "llm_qwen-canary-7d9f_"+uidA)
	h.podDir(t, "kube-system_other_"+uidStatic)
	h.podDir(t, "not-a-pod-dir")
	h.podDir(t, "a_b_c_"+uidB) // too many parts: not uidB's pod

	srv := healthyServer()
	const gib = 1 << 30
	gputest.Runs(device(srv, 2), nvml.ProcessInfo{Pid: 1004, UsedGpuMemory: 1 * gib}, nvml.ProcessInfo{Pid: 1001, UsedGpuMemory: 30 * gib})
	gputest.Runs(device(srv, 5),
		nvml.ProcessInfo{Pid: 1003, UsedGpuMemory: memoryNotAvailable},
		nvml.ProcessInfo{Pid: 1002, UsedGpuMemory: 2 * gib},
		nvml.ProcessInfo{Pid: 1001, UsedGpuMemory: 4 * gib})

	c := openCollector(t, srv, WithProcRoot(h.proc), WithPodsLogDir(h.pods))
	snap, err := c.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	podA := ProcessSample{PodUID: uidA, Pod: "qwen-canary-7d9f", Namespace: "llm"}
	with := func(p ProcessSample, pid uint32, used *uint64) ProcessSample {
		p.PID, p.UsedBytes = pid, used
		return p
	}
	want := map[int][]ProcessSample{
		2: {with(podA, 1001, ptr[uint64](30*gib)), {PID: 1004, UsedBytes: ptr[uint64](1 * gib)}},
		5: {
			with(podA, 1001, ptr[uint64](4*gib)),
			{PID: 1002, UsedBytes: ptr[uint64](2 * gib), PodUID: uidB},
			{PID: 1003},
		},
	}
	for i, s := range snap.Devices {
		if !reflect.DeepEqual(s.Processes, want[i]) {
			t.Errorf("device %d processes:\n got %s\nwant %s", i, dump(DeviceSample{Processes: s.Processes}), dump(DeviceSample{Processes: want[i]}))
		}
	}
}

func TestSnapshotProcessMappingProblems(t *testing.T) {
	t.Run("unreadable cgroup", func(t *testing.T) {
		h := newFakeHost(t)
		// A directory where the cgroup file should be: reading it fails.
		if err := os.MkdirAll(filepath.Join(h.proc, "77", "cgroup"), 0o755); err != nil {
			t.Fatal(err)
		}
		srv := healthyServer()
		gputest.Runs(device(srv, 1), nvml.ProcessInfo{Pid: 77, UsedGpuMemory: 5})
		snap, err := openCollector(t, srv, WithProcRoot(h.proc), WithPodsLogDir(h.pods)).Snapshot(context.Background())
		if err == nil || !strings.HasPrefix(err.Error(), "map processes to pods: read cgroup of pid 77: ") {
			t.Fatalf("err = %v, want the unreadable cgroup", err)
		}
		if len(snap.Devices) != 8 || !reflect.DeepEqual(snap.Devices[1].Processes, []ProcessSample{{PID: 77, UsedBytes: ptr[uint64](5)}}) {
			t.Errorf("want all 8 devices and the process without a pod, got %s", dump(snap.Devices[1]))
		}
	})
	t.Run("mapping off and pod log directory missing", func(t *testing.T) {
		h := newFakeHost(t)
		h.process(t, 9, "0::/kubepods/pod"+uidB+"/c\n")
		for _, tc := range []struct {
			name string
			opts []Option
			want ProcessSample
		}{
			{"no proc root", []Option{WithProcRoot(""), WithPodsLogDir(h.pods)}, ProcessSample{PID: 9}},
			{"no pods dir", []Option{WithProcRoot(h.proc), WithPodsLogDir(filepath.Join(h.pods, "absent"))}, ProcessSample{PID: 9, PodUID: uidB}},
			{"pods dir off", []Option{WithProcRoot(h.proc), WithPodsLogDir("")}, ProcessSample{PID: 9, PodUID: uidB}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				srv := healthyServer()
				gputest.Runs(device(srv, 0), nvml.ProcessInfo{Pid: 9, UsedGpuMemory: memoryNotAvailable})
				snap, err := openCollector(t, srv, tc.opts...).Snapshot(context.Background())
				if err != nil {
					t.Fatalf("Snapshot: %v", err)
				}
				if got := snap.Devices[0].Processes; !reflect.DeepEqual(got, []ProcessSample{tc.want}) {
					t.Errorf("processes = %+v, want %+v", got, tc.want)
				}
			})
		}
	})
}
