//go:build cgo

package gpu

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// memoryNotAvailable is NVML_VALUE_NOT_AVAILABLE in a process's used GPU
// memory: NVML cannot tell, e.g. without the privileges to see it.
const memoryNotAvailable = ^uint64(0)

// computeProcesses lists the compute processes running on device i,
// ordered by PID; nil when there are none or the device cannot list them
// (nvml.ERROR_NOT_SUPPORTED). Pod fields are left empty.
func computeProcesses(i int, dev nvml.Device) ([]ProcessSample, error) {
	infos, ret := dev.GetComputeRunningProcesses()
	list, err := optional(i, "get compute running processes", infos, ret)
	if list == nil || len(*list) == 0 {
		return nil, err
	}
	procs := make([]ProcessSample, 0, len(*list))
	for _, p := range *list {
		s := ProcessSample{PID: p.Pid}
		if p.UsedGpuMemory != memoryNotAvailable {
			s.UsedBytes = &p.UsedGpuMemory
		}
		procs = append(procs, s)
	}
	slices.SortStableFunc(procs, func(a, b ProcessSample) int { return cmp.Compare(a.PID, b.PID) })
	return procs, nil
}

// mapPods fills in the pod UID, name and namespace of every process in
// samples, from <procRoot>/<pid>/cgroup and the directory names in
// podsLogDir. Fields it cannot find stay empty. The returned error joins
// the files it could not read, each once, and never stops the mapping.
func (c *Collector) mapPods(samples []DeviceSample) error {
	if c.procRoot == "" {
		return nil
	}
	var (
		errs []error
		pods map[string]podRef // read on first need
		uids = map[uint32]string{}
	)
	for di := range samples {
		for pi := range samples[di].Processes {
			p := &samples[di].Processes[pi]
			uid, seen := uids[p.PID]
			if !seen {
				var err error
				if uid, err = podUIDOfPID(c.procRoot, p.PID); err != nil {
					errs = append(errs, err)
				}
				uids[p.PID] = uid
			}
			if uid == "" {
				continue
			}
			p.PodUID = uid
			if pods == nil {
				var err error
				if pods, err = podsByUID(c.podsLogDir); err != nil {
					errs = append(errs, err)
				}
			}
			if ref, ok := pods[uid]; ok {
				p.Namespace, p.Pod = ref.namespace, ref.name
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("map processes to pods: %w", err)
	}
	return nil
}
