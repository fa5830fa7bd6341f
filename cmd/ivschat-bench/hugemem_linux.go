package main

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on amd64 and arm64.
const hugePage = 2 << 20

// counters returns n zeroed counters that the kernel may back with 2 MiB
// pages (MADV_HUGEPAGE), for the tracker's per-viewer arrays, which every
// frame received touches at a place of its own.
//
// Why. With 4 KiB pages, a frame's increment of its viewer's histogram
// lands on a page no other viewer shares, and on the benchmark's VM
// (shadow paging) a page that fell out of the TLB while the generator
// waited for the next message costs microseconds to reach again. Measured
// there (a Go loop doing 400 random increments then sleeping 5 ms, 200
// times): 360–520 ns per increment in 2 MiB of 4 KiB pages and 2.6–4.6 µs
// in 46 MiB (19,000 viewers' histograms), against 55 and 130 ns with huge
// pages. A perf record of the generator at 1,000 viewers × 10 messages/s
// put 37 % of its CPU samples on that one increment
// (docs/benchmarks.md, "The generator, again, and a third host").
//
// Below a huge page, or if the mapping fails, it is an ordinary slice.
// The mapping is never unmapped: the tracker lives as long as the process.
// Only for types without pointers: the garbage collector does not see
// this memory.
func counters[T uint32 | uint64](n int) []T {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size < hugePage {
		return make([]T, n)
	}
	// One huge page more than needed, so that the counters can start on a
	// huge-page boundary.
	mem, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]T, n)
	}
	off := (hugePage - int(uintptr(unsafe.Pointer(&mem[0])))%hugePage) % hugePage
	mem = mem[off : off+size]
	// Advice only: a kernel without transparent huge pages, or with them
	// disabled, leaves 4 KiB pages, which work the same.
	_ = syscall.Madvise(mem, syscall.MADV_HUGEPAGE)
	return unsafe.Slice((*T)(unsafe.Pointer(&mem[0])), n)
}
