// Package cpustat reads the CPU time this process has used, so that
// benchmarks can report CPU per operation: on a machine shared with other
// work, wall-clock rates fall with the load while CPU per operation stays
// what the code costs (docs/performance.md explains how figures are read).
package cpustat

import (
	"syscall"
	"time"
)

// Self returns the user plus system CPU time of this process so far.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Children returns the CPU time of waited-for child processes so far.
func Children() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
