package bench

import "strings"

// A 3×5 pixel font for the plot's labels, so the PNG needs no font
// package. Letters are drawn as capitals (both cases); a character not in
// glyphChars draws as a blank.
const (
	glyphW     = 3
	glyphH     = 5
	glyphChars = "abcdefghijklmnopqrstuvwxyz0123456789-./:()=,"
	// glyphBits holds, for each character of glyphChars in order, glyphH
	// rows of glyphW pixels, '#' for ink.
	glyphBits = "" +
		".#.#.#####.##.#" + // a
		"##.#.###.#.###." + // b
		".###..#..#...##" + // c
		"##.#.##.##.###." + // d
		"####..##.#..###" + // e
		"####..##.#..#.." + // f
		".###..#.##.#.##" + // g
		"#.##.#####.##.#" + // h
		"###.#..#..#.###" + // i
		"..#..#..##.#.#." + // j
		"#.##.###.#.##.#" + // k
		"#..#..#..#..###" + // l
		"#.########.##.#" + // m
		"##.#.##.##.##.#" + // n
		".#.#.##.##.#.#." + // o
		"##.#.###.#..#.." + // p
		".#.#.##.###..##" + // q
		"##.#.###.#.##.#" + // r
		".###...#...###." + // s
		"###.#..#..#..#." + // t
		"#.##.##.##.####" + // u
		"#.##.##.##.#.#." + // v
		"#.##.########.#" + // w
		"#.##.#.#.#.##.#" + // x
		"#.##.#.#..#..#." + // y
		"###..#.#.#..###" + // z
		"####.##.##.####" + // 0
		".#.##..#..#.###" + // 1
		"##...#.#.#..###" + // 2
		"##...#.#...###." + // 3
		"#.##.####..#..#" + // 4
		"####..##...###." + // 5
		".###..####.####" + // 6
		"###..#.#..#..#." + // 7
		"####.#####.####" + // 8
		"####.####..###." + // 9
		"......###......" + // -
		".............#." + // .
		"..#..#.#.#..#.." + // /
		"....#.....#...." + // :
		".#.#..#..#...#." + // (
		".#...#..#..#.#." + // )
		"...###...###..." + // =
		"..........#.#.." // ,
)

// glyph returns the glyphW×glyphH pixels of r ('#' is ink), or "" for a
// blank.
func glyph(r rune) string {
	if r >= 'A' && r <= 'Z' {
		r += 'a' - 'A'
	}
	i := strings.IndexRune(glyphChars, r)
	if i < 0 {
		return ""
	}
	n := glyphW * glyphH
	return glyphBits[i*n : (i+1)*n]
}
