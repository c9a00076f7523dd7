package main

import (
	"fmt"
	"os"
	"time"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
)

// mapDuration is how long map runs the default workload when it draws a
// fresh heap rather than a live process.
const mapDuration = time.Second

func mapCmd(args []string, out *output) error {
	fs := newFlagSet("map")
	png := fs.String("o", "", "write the map as a PNG to this file instead of drawing it on the terminal")
	d := fs.Duration("duration", mapDuration, "without a URL: how long to run the default workload first")
	pos, err := fs.parse(args, out)
	if err != nil {
		return err
	}
	var states []arena.PageState
	var source string
	switch len(pos) {
	case 0:
		cfg := runConfig{workload: defaultWorkload, duration: *d, goroutines: defaultGoroutines, fill: massDefaultFill}
		if err := cfg.check(); err != nil {
			return usageError{err}
		}
		if _, err := runWorkload(cfg, out, func(h *arena.Heap) { states = h.PageMap(nil) }); err != nil {
			return err
		}
		source = fmt.Sprintf("a fresh heap after %s of the %s workload", *d, defaultWorkload)
	case 1:
		base, err := handlerURL(pos[0])
		if err != nil {
			return usageError{err}
		}
		u := *base
		u.Path += "pagemap"
		var m heapview.PageMap
		if err := getJSON(u.String(), &m); err != nil {
			return err
		}
		if states, err = m.Decode(); err != nil {
			return fmt.Errorf("GET %s: %w", u.String(), err)
		}
		// The map is drawn a chunk a row, labelled in this build's page
		// size: a server with other geometry would be drawn wrong.
		if m.PageSize != arena.PageSize || m.ChunkPages != arena.ChunkPages {
			return fmt.Errorf("GET %s: the page map has %d-byte pages in chunks of %d; this arenastat draws %d-byte pages in chunks of %d",
				u.String(), m.PageSize, m.ChunkPages, arena.PageSize, arena.ChunkPages)
		}
		source = base.String()
	default:
		return usagef("want at most one URL, got %d arguments", len(pos))
	}
	if *png == "" {
		return writeTextMap(out.stdout, source, states)
	}
	f, err := os.Create(*png)
	if err != nil {
		return err
	}
	if err := writePNGMap(f, states); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	c := countStates(states)
	fmt.Fprintf(out.stdout, "wrote %s: page map of %s, %d chunks, %d pages in use, %d free, %d released\n",
		*png, source, chunks(len(states)), c.inUse, c.free, c.released)
	return nil
}
