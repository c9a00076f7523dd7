package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/offheap/offheap/internal/heapview"
)

const (
	// attachTimeout bounds one request to a live process.
	attachTimeout = 5 * time.Second
	// maxResponseBytes bounds what arenastat reads from a handler.
	maxResponseBytes = 64 << 20
	// clearScreen moves a terminal's cursor home and clears it (watch mode).
	clearScreen = "\x1b[H\x1b[2J"
)

var httpClient = &http.Client{Timeout: attachTimeout}

func attachCmd(args []string, out *output) error {
	fs := newFlagSet("attach")
	watch := fs.Duration("watch", 0, "refresh at this interval and show rates (0: report once)")
	count := fs.Int("count", 0, "with -watch, stop after this many reports (0: until interrupted)")
	fs.addFormat()
	pos, err := fs.parse(args, out)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one URL, got %d arguments", len(pos))
	}
	if *watch < 0 || *count < 0 {
		return usagef("-watch and -count must not be negative")
	}
	base, err := handlerURL(pos[0])
	if err != nil {
		return usageError{err}
	}
	n := *count
	if *watch == 0 {
		n = 1
	}
	var prev *heapview.Snapshot
	var prevAt time.Time
	for i := 0; n == 0 || i < n; i++ {
		if i > 0 {
			time.Sleep(*watch)
		}
		at := time.Now()
		s, err := fetchSnapshot(base)
		if err != nil {
			return err
		}
		rep := &Report{Title: "offheap: " + base.String(), Phases: []Phase{{Label: at.Format(time.TimeOnly), Snapshot: s}}}
		if prev != nil {
			rep.Rates = rates(*prev, s, at.Sub(prevAt))
		}
		if err := writeWatched(out, rep, fs.format, *watch > 0, i); err != nil {
			return err
		}
		prev, prevAt = &s, at
	}
	return nil
}

// writeWatched prints one report of a (possibly) watched series: in watch
// mode a terminal is cleared first, JSON goes one document a line, and
// other output is separated by a blank line.
func writeWatched(out *output, rep *Report, format string, watching bool, i int) error {
	if !watching {
		return rep.write(out.stdout, format)
	}
	if format == formatJSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = out.stdout.Write(append(b, '\n'))
		return err
	}
	if out.terminal && format == formatTable {
		fmt.Fprint(out.stdout, clearScreen)
	} else if i > 0 {
		fmt.Fprintln(out.stdout)
	}
	return rep.write(out.stdout, format)
}

// handlerURL parses the URL of an arenahttp handler, adding http:// if it
// has no scheme, and trims a trailing endpoint (metrics, pagemap) and the
// query so that endpoints can be added to it.
func handlerURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("bad URL %q: want http://host:port/path", raw)
	}
	switch path.Base(u.Path) {
	case "metrics", "pagemap":
		u.Path = path.Dir(u.Path)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// fetchSnapshot reads the JSON snapshot from the handler at base. A reply
// that is not a snapshot ({}, null, another program's JSON) is refused
// rather than shown as an empty heap.
func fetchSnapshot(base *url.URL) (heapview.Snapshot, error) {
	u := *base
	u.RawQuery = "format=json"
	body, err := get(u.String())
	if err != nil {
		return heapview.Snapshot{}, err
	}
	s, err := heapview.ParseSnapshot(body)
	if err != nil {
		return s, fmt.Errorf("GET %s: %w", u.String(), err)
	}
	return s, nil
}

// getJSON GETs u and decodes its JSON body into v.
func getJSON(u string, v any) error {
	body, err := get(u)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: not an offheap handler's JSON: %w", u, err)
	}
	return nil
}

// get GETs u and returns its body, or an error quoting the server's reply
// if it is not 200 OK.
func get(u string) ([]byte, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		// Status line and body are the server's words: escaped and cut
		// (untrusted) before they can reach a terminal.
		return nil, fmt.Errorf("GET %s: %s: %s", u, untrusted(resp.Status), untrusted(strings.TrimSpace(string(body))))
	}
	return body, nil
}
