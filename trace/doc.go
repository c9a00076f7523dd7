// Package trace records and parses allocation traces: the sequence of
// allocations and frees a program made, in a form that can be replayed on a
// fresh heap (arenastat replay) to study fragmentation, memory use and the
// scavenger without the program that produced it.
//
// # Format, version 1
//
// A trace is UTF-8 text, one record per line, lines ending in "\n" (a
// trailing "\r" is tolerated). The first line is the header, exactly:
//
//	offheap-trace v1
//
// Every later line is blank, a comment, or one operation:
//
//	# any text                a comment; ignored, as are blank lines
//	a <id> <size>             allocate size bytes and call the object id
//	f <id>                    free the object called id
//
// Fields are separated by one or more spaces or tabs. <id> is a decimal
// integer in [0, 2^64); <size> a decimal integer in [0, MaxSize]. No signs,
// no other bases. An id names one live object: "a" of an id that is live is
// an error (duplicate id), and so is "f" of an id that is not live (free of
// unknown id, which covers double frees). Once freed, an id may be used
// again. Objects still live at the end of the trace are simply live; a
// replay leaves them allocated.
//
// The order of lines is the order of the operations. A Recorder wrapping
// allocators used by several goroutines writes each operation once the
// allocator has performed it, under one lock, so the trace is a valid
// sequential history: an object's "a" always precedes its "f".
//
// Example:
//
//	offheap-trace v1
//	# two small objects and a large one
//	a 0 24
//	a 1 100000
//	f 0
//	a 2 24
//
// Errors name the line: a Parser returns a *SyntaxError whose message reads
// "line 7: free of unknown id 12".
//
// # Size
//
// About 10 bytes per operation before compression; traces compress well
// (ids ascend), so gzip them for storage if they are large.
package trace
