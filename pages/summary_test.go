package pages

import "testing"

func TestSummaryPack(t *testing.T) {
	tests := []struct{ start, max, end uint }{
		{0, 0, 0},
		{1, 2, 3},
		{ChunkPages, ChunkPages, ChunkPages},
		{maxSumValue - 1, maxSumValue - 1, maxSumValue - 1},
		{0, maxSumValue - 1, 0},
		{maxSumValue, maxSumValue, maxSumValue},
		{12345, 999999, 54321},
	}
	for _, tt := range tests {
		s := packSummary(tt.start, tt.max, tt.end)
		if a, b, c := s.unpack(); a != tt.start || b != tt.max || c != tt.end {
			t.Errorf("pack(%d,%d,%d) unpacks to (%d,%d,%d)", tt.start, tt.max, tt.end, a, b, c)
		}
		if s.start() != tt.start || s.max() != tt.max || s.end() != tt.end {
			t.Errorf("pack(%d,%d,%d): accessors say (%d,%d,%d)", tt.start, tt.max, tt.end, s.start(), s.max(), s.end())
		}
	}
	if packSummary(0, 0, 0) != 0 {
		t.Error("an all-used block must summarise to zero (the tree skips zero entries)")
	}
}

func TestSummaryPackUnrepresentable(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("packSummary(0, 2^21, 0) did not panic")
		}
	}()
	packSummary(0, maxSumValue, 0)
}

func TestMergeSummaries(t *testing.T) {
	const size = 8
	p := packSummary
	full := p(size, size, size)
	tests := []struct {
		name string
		in   []summary
		want summary
	}{
		{"all used", []summary{0, 0, 0}, 0},
		{"all free", []summary{full, full, full}, p(3*size, 3*size, 3*size)},
		{"run across a border", []summary{p(0, 2, 3), p(4, 4, 0)}, p(0, 7, 0)},
		{"run through a free block", []summary{p(0, 1, 2), full, p(3, 3, 1)}, p(0, 13, 1)},
		{"start carries through free blocks", []summary{full, p(2, 5, 0), p(1, 1, 1)}, p(10, 10, 1)},
		{"end carries through free blocks", []summary{p(1, 1, 0), p(0, 0, 3), full}, p(1, 11, 11)},
		{"inner max wins", []summary{p(1, 1, 1), p(0, 6, 0), p(1, 1, 1)}, p(1, 6, 1)},
		{"single child", []summary{p(3, 4, 2)}, p(3, 4, 2)},
		{"zero breaks runs", []summary{p(0, 3, 3), 0, p(3, 3, 0)}, p(0, 3, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mergeSummaries(tt.in, size); got != tt.want {
				t.Errorf("merge = %v, want %v", got, tt.want)
			}
		})
	}
	// Merging eight full level-3 blocks makes a full top-sized block,
	// which needs the sumFull encoding.
	top := packSummary(1<<18, 1<<18, 1<<18)
	if got := mergeSummaries([]summary{top, top, top, top, top, top, top, top}, 1<<18); got != sumFull {
		t.Errorf("full 2^21-page block = %v (%#x), want sumFull", got, uint64(got))
	}
}
