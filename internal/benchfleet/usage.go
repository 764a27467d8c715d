package benchfleet

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpu is the CPU time (user + system) of this process and of its waited-for
// children (here, the `git http-backend` and git CLI processes).
type cpu struct{ self, children time.Duration }

func cpuNow() cpu {
	return cpu{self: rusageCPU(syscall.RUSAGE_SELF), children: rusageCPU(syscall.RUSAGE_CHILDREN)}
}

func (c cpu) since(before cpu) cpu {
	return cpu{self: c.self - before.self, children: c.children - before.children}
}

func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time a finished child used, and its peak RSS in KiB.
func processCPU(st *os.ProcessState) (time.Duration, int64) {
	if st == nil {
		return 0, 0
	}
	var rss int64
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	return st.UserTime() + st.SystemTime(), rss
}

// resetPeakRSS starts a new peak for peakRSS (Linux: clear_refs 5) and
// returns the resident set now, in KiB.
func resetPeakRSS() int64 {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return procStatus("VmRSS")
}

// peakRSS is this process's peak resident set (VmHWM) since the last
// resetPeakRSS, in KiB; 0 when unknown.
func peakRSS() int64 { return procStatus("VmHWM") }

// procStatus reads one "kB" field of /proc/self/status; 0 when unknown.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
