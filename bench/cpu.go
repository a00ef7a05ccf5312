package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// cpuMeter measures the CPU time (user + system) the server spends during
// a row's measured phase: from the scenario's start mark (mark, where it
// starts its clock) to its summary (done). For a child server it reads
// utime+stime of the server's process tree from /proc, so the figure is
// the server's alone and barely moves with the machine's load; for an
// in-process target (rivet, baseline-inproc) it is this whole process,
// load generator included (getrusage). A row whose server processes
// change between the two readings (a kill or restart inside the measured
// phase: durability) gets no figure.
type cpuMeter struct {
	s       *server
	pids    []int
	start   time.Duration
	used    time.Duration
	marked  bool
	valid   bool
	inProc  bool
	settled bool
}

// meter is the current row's meter (nil outside a row); scenarios call
// meter.mark() where their measured phase starts, summarize calls
// meter.done().
var meter *cpuMeter

func newCPUMeter(s *server) *cpuMeter {
	if !s.isLocal() {
		return nil
	}
	return &cpuMeter{s: s, inProc: s.proc == nil}
}

// mark starts the measurement; later marks (a scenario's next round) are
// ignored.
func (m *cpuMeter) mark() {
	if m == nil || m.marked {
		return
	}
	m.marked = true
	if m.inProc {
		m.start, m.valid = selfCPU(), true
		return
	}
	m.pids = m.s.serverPids()
	t, ok := treeCPU(m.pids)
	m.start, m.valid = t, ok
}

// done ends the measurement (the first call after mark counts).
func (m *cpuMeter) done() {
	if m == nil || !m.marked || m.settled {
		return
	}
	m.settled = true
	if !m.valid {
		return
	}
	var t time.Duration
	if m.inProc {
		t = selfCPU()
	} else {
		var ok bool
		if t, ok = treeCPU(m.pids); !ok {
			m.valid = false
			return
		}
	}
	m.used = t - m.start
}

// perOp is the CPU time per operation in µs (0: no figure), and what it
// covers.
func (m *cpuMeter) perOp(ops int) (float64, string) {
	if m == nil || !m.settled || !m.valid || ops <= 0 {
		return 0, ""
	}
	scope := "server"
	if m.inProc {
		scope = "process (server and load generator)"
	}
	return float64(m.used.Microseconds()) / float64(ops), scope
}

// serverPids are the processes a child target runs: the server's tree,
// and the engine's for an engine target.
func (s *server) serverPids() []int {
	var p []int
	for _, c := range append([]*child{s.proc, s.engine}, s.extra...) {
		if c != nil {
			p = append(p, c.pids()...)
		}
	}
	return p
}

// treeCPU sums utime+stime of pids; false if one of them is gone.
func treeCPU(pids []int) (time.Duration, bool) {
	var t time.Duration
	for _, p := range pids {
		c, err := procCPU(p)
		if err != nil {
			return 0, false
		}
		t += c
	}
	return t, true
}

// procCPU is utime+stime of one process (all its threads, live and
// exited), from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	// After the command: state(1) ppid(2) ... utime(12) stime(13).
	f := strings.Fields(s[i+1:])
	if len(f) < 13 || f[0] == "Z" {
		return 0, fmt.Errorf("/proc/%d/stat: process gone", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(u+st) * clockTick, nil
}

// selfCPU is this process's user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
