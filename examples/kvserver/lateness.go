package main

import "time"

// latenessTick is how often the lateness probe wakes: often enough to
// catch stalls of a few milliseconds, rare enough to cost nothing.
const latenessTick = 5 * time.Millisecond

// probeLateness sleeps latenessTick at a time and records how late each
// wake-up is, until stop is closed. Lateness is time the process could not
// run a ready goroutine: the kernel not scheduling its threads (a busy or
// throttled machine), or a GC stop-the-world. INFO reports it beside the
// store's own operation times, so a latency spike can be placed: inside
// the store, or in the process as a whole.
//
// It sees stalls of the whole process (the kernel running none of its
// threads, a GC stop-the-world) and of the P its timer belongs to. A
// stall of one thread holding another P (the kernel descheduling it on a
// busy machine) shows only in the times of the operations on that thread.
func probeLateness(t *opTimer, stop <-chan struct{}) {
	timer := time.NewTimer(latenessTick)
	defer timer.Stop()
	want := time.Now().Add(latenessTick)
	for {
		select {
		case <-stop:
			return
		case now := <-timer.C:
			t.record(max(now.Sub(want), 0))
			want = time.Now().Add(latenessTick)
			timer.Reset(latenessTick)
		}
	}
}
