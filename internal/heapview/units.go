package heapview

import (
	"fmt"
	"strconv"
)

// Bytes formats n bytes for people: "512 B", "1.5 KiB", "64.0 GiB".
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Percent formats a ratio as a percentage with one decimal: "12.5 %".
func Percent(r float64) string { return fmt.Sprintf("%.1f %%", 100*r) }

// Count formats n with thousands separators: "1,234,567".
func Count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
