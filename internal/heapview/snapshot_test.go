package heapview

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseSnapshot(t *testing.T) {
	real, err := os.ReadFile("testdata/snapshot.json.golden")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSnapshot(real)
	if err != nil {
		t.Fatalf("the served form refused: %v", err)
	}
	if want := fixed(); s.Mallocs != want.Mallocs || s.Reserved != want.Reserved || len(s.Classes) != len(want.Classes) {
		t.Fatalf("parsed %+v", s)
	}
	// What a newer server may add is ignored, not refused.
	var m map[string]any
	json.Unmarshal(real, &m)
	m["a_figure_from_the_future"] = 1
	newer, _ := json.Marshal(m)
	if _, err := ParseSnapshot(newer); err != nil {
		t.Fatalf("an added field refused: %v", err)
	}
	// A heap with no allocations yet serves "classes": null.
	m["classes"] = nil
	empty, _ := json.Marshal(m)
	if _, err := ParseSnapshot(empty); err != nil {
		t.Fatalf("a snapshot with no classes refused: %v", err)
	}
	delete(m, "mallocs")
	partial, _ := json.Marshal(m)

	for _, bad := range []string{`{}`, `null`, `[]`, `"a string"`, `42`, `garbage`, ``, `{"mallocs":1}`, string(partial),
		`{"reserved_bytes":"lots"}`, string(real) + ` {}`} {
		_, err := ParseSnapshot([]byte(bad))
		if !errors.Is(err, ErrNotSnapshot) {
			t.Errorf("ParseSnapshot(%.40q) = %v, want ErrNotSnapshot", bad, err)
		}
	}
	if _, err := ParseSnapshot(partial); err == nil || !strings.Contains(err.Error(), `"mallocs"`) {
		t.Errorf("missing field not named: %v", err)
	}
}
