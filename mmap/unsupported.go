//go:build !(linux && (amd64 || arm64))

package mmap

// offheap is built and tested on linux/amd64 and linux/arm64 only. On any
// other platform this file is the one that compiles, and the undefined name
// below makes the build fail with an error that says so, instead of a list
// of missing unix constants or a constant overflow further up.
//
// Why those two: the heap needs Linux's mmap flags and madvise advice
// (MAP_NORESERVE, MADV_FREE, PR_SET_VMA_ANON_NAME), a 64-bit address space
// (the span table addresses 256 GiB of records), a little-endian CPU (span
// slot bytes are read eight at a time as one word) and an OS page no larger
// than the 8 KiB heap page (so an arm64 kernel built with 16 KiB or
// 64 KiB pages is not supported either: it builds, but the heap's page
// operations are misaligned for it). linux/riscv64 and linux/loong64 might meet all
// of these but have never been tested, and ppc64le and loong64 kernels
// commonly use 64 KiB or 16 KiB pages, so they are not claimed.
var _ = offheap_builds_only_on_linux_amd64_and_linux_arm64
