//go:build !linux

package main

// counters returns n zeroed counters (see hugemem_linux.go: huge pages
// are asked for on Linux only).
func counters[T uint32 | uint64](n int) []T {
	return make([]T, n)
}
