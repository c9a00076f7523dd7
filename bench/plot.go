package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"slices"
)

// Plot layout, in pixels. The font is drawn at fontScale so its 3×5
// glyphs read at a glance.
const (
	panelW     = 420
	panelH     = 260
	panelCols  = 3
	marginL    = 64 // room for the y tick labels
	marginR    = 16
	marginT    = 30 // room for the title
	marginB    = 34 // room for the x tick labels
	legendRowH = 22
	fontScale  = 2
	yTicks     = 4
)

// palette gives each allocator a colour, in column order.
func palette() []color.RGBA {
	return []color.RGBA{
		{0xd6, 0x27, 0x28, 255}, // red
		{0xff, 0x7f, 0x0e, 255}, // orange
		{0x1f, 0x77, 0xb4, 255}, // blue
		{0x8c, 0x56, 0x4b, 255}, // brown
		{0x7f, 0x7f, 0x7f, 255}, // grey
		{0x2c, 0xa0, 0x2c, 255}, // green
		{0x94, 0x67, 0xbd, 255}, // purple
		{0x17, 0xbe, 0xcf, 255}, // cyan
		{0xe3, 0x77, 0xc2, 255}, // pink
		{0xbc, 0xbd, 0x22, 255}, // olive
	}
}

// WritePlot draws throughput (million operations per second, all threads
// together) by thread count: one panel per workload run at more than one
// thread count, one line per allocator, and a legend below.
func WritePlot(w io.Writer, results []Result, workloads []Workload, allocs []string) error {
	type point struct {
		threads int
		mops    float64
	}
	series := map[string]map[string][]point{} // workload → alloc → points
	for _, r := range results {
		if r.Error != "" || r.Seconds <= 0 {
			continue
		}
		if series[r.Workload] == nil {
			series[r.Workload] = map[string][]point{}
		}
		series[r.Workload][r.Alloc] = append(series[r.Workload][r.Alloc], point{r.Threads, r.OpsPerSec() / 1e6})
	}
	var panels []string
	for _, wl := range workloads {
		threads := map[int]bool{}
		for _, pts := range series[wl.Name] {
			for _, p := range pts {
				threads[p.threads] = true
			}
		}
		if len(threads) > 1 {
			panels = append(panels, wl.Name)
		}
	}
	if len(panels) == 0 {
		return fmt.Errorf("plot: no workload ran at more than one thread count")
	}
	rows := (len(panels) + panelCols - 1) / panelCols
	legendH := legendRowH * ((len(allocs)+3)/4 + 1)
	img := image.NewRGBA(image.Rect(0, 0, panelW*panelCols, panelH*rows+legendH))
	fillRect(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	colors := palette()
	colorOf := func(alloc string) color.RGBA {
		return colors[slices.Index(allocs, alloc)%len(colors)]
	}
	for i, name := range panels {
		x0, y0 := (i%panelCols)*panelW, (i/panelCols)*panelH
		plotArea := image.Rect(x0+marginL, y0+marginT, x0+panelW-marginR, y0+panelH-marginB)
		var xs []int
		ymax := 0.0
		for _, pts := range series[name] {
			for _, p := range pts {
				if !slices.Contains(xs, p.threads) {
					xs = append(xs, p.threads)
				}
				ymax = max(ymax, p.mops)
			}
		}
		slices.Sort(xs)
		ymax *= 1.1
		drawText(img, x0+marginL, y0+8, name, color.RGBA{0, 0, 0, 255}) // the unit is in the footer
		axes(img, plotArea, xs, ymax)
		xpos := func(t int) int {
			if len(xs) == 1 {
				return plotArea.Min.X
			}
			return plotArea.Min.X + slices.Index(xs, t)*(plotArea.Dx()-1)/(len(xs)-1)
		}
		ypos := func(v float64) int { return plotArea.Max.Y - 1 - int(v/ymax*float64(plotArea.Dy()-1)) }
		for _, alloc := range allocs {
			pts := series[name][alloc]
			slices.SortFunc(pts, func(a, b point) int { return a.threads - b.threads })
			c := colorOf(alloc)
			for j, p := range pts {
				x, y := xpos(p.threads), ypos(p.mops)
				fillRect(img, image.Rect(x-2, y-2, x+3, y+3), c)
				if j > 0 {
					q := pts[j-1]
					line(img, xpos(q.threads), ypos(q.mops), x, y, c)
				}
			}
		}
	}
	ly := panelH*rows + 6
	for i, alloc := range allocs {
		x, y := 12+(i%4)*(panelW*panelCols/4), ly+(i/4)*legendRowH
		fillRect(img, image.Rect(x, y+2, x+24, y+8), colorOf(alloc))
		drawText(img, x+32, y, alloc, color.RGBA{0, 0, 0, 255})
	}
	drawText(img, 12, ly+legendRowH*((len(allocs)+3)/4), "x: threads   y: million operations per second, all threads", color.RGBA{0x40, 0x40, 0x40, 255})
	return png.Encode(w, img)
}

// axes draws the frame, the thread-count ticks under it and yTicks+1
// value ticks beside it.
func axes(img *image.RGBA, r image.Rectangle, xs []int, ymax float64) {
	black := color.RGBA{0, 0, 0, 255}
	grid := color.RGBA{0xe0, 0xe0, 0xe0, 255}
	for i := 0; i <= yTicks; i++ {
		y := r.Max.Y - 1 - i*(r.Dy()-1)/yTicks
		line(img, r.Min.X, y, r.Max.X-1, y, grid)
		label := fmt.Sprintf("%.3g", ymax*float64(i)/yTicks)
		drawText(img, r.Min.X-8-textWidth(label), y-glyphH*fontScale/2, label, black)
	}
	line(img, r.Min.X, r.Min.Y, r.Min.X, r.Max.Y-1, black)
	line(img, r.Min.X, r.Max.Y-1, r.Max.X-1, r.Max.Y-1, black)
	for i, t := range xs {
		x := r.Min.X
		if len(xs) > 1 {
			x += i * (r.Dx() - 1) / (len(xs) - 1)
		}
		line(img, x, r.Max.Y-1, x, r.Max.Y+3, black)
		label := fmt.Sprint(t)
		drawText(img, x-textWidth(label)/2, r.Max.Y+8, label, black)
	}
}

func textWidth(s string) int { return len(s) * (glyphW + 1) * fontScale }

// drawText draws s with its top-left corner at (x, y).
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g := glyph(r)
		for i := 0; i < len(g); i++ {
			if g[i] == '#' {
				px, py := x+(i%glyphW)*fontScale, y+(i/glyphW)*fontScale
				fillRect(img, image.Rect(px, py, px+fontScale, py+fontScale), c)
			}
		}
		x += (glyphW + 1) * fontScale
	}
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a two-pixel-wide line from (x0, y0) to (x1, y1) (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fillRect(img, image.Rect(x0, y0, x0+2, y0+2), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
