package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

const (
	// progressTick is how often the progress bar is redrawn.
	progressTick = 100 * time.Millisecond
	// progressWidth is the bar's width in characters.
	progressWidth = 30
)

// startProgress draws a progress bar on w until the returned function is
// called, which erases it. frac reports progress in [0, 1].
func startProgress(w io.Writer, label string, frac func() float64, detail func() string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressTick)
		defer t.Stop()
		for {
			drawProgress(w, label, frac(), detail())
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K") // back to column 0, erase the line
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func drawProgress(w io.Writer, label string, f float64, detail string) {
	f = min(max(f, 0), 1)
	n := int(f * progressWidth)
	fmt.Fprintf(w, "\r%s [%s%s] %3.0f%% %s\x1b[K", label, strings.Repeat("#", n), strings.Repeat(".", progressWidth-n), 100*f, detail)
}
