// Package linechart draws line charts as PNG images with the standard library only:
// stacked panels that share an x axis, each with its own y axis, ticks, grid, legend and
// series, and a built-in 5x7 bitmap font for the labels.
//
// To draw a chart:
//  1. Fill a Chart with Panels, each with Series of X and Y values of equal length (X in
//     ascending order gives a line; NaN Y values leave a gap).
//  2. Call WritePNG, or Render for the image.
//
// The chart does not keep the caller's slices after Render returns.
package linechart

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"
)

// Limits.
const (
	// MaxPixels bounds Width*Height.
	MaxPixels = 16 << 20
	// MaxPanels bounds the panels of one chart.
	MaxPanels = 8
	// MaxPoints bounds the points of one series.
	MaxPoints = 1 << 20
)

// Chart is a stack of panels sharing an x axis.
type Chart struct {
	Title  string
	XLabel string
	// Width and Height are the image's size in pixels; defaults 1200 and 300 per panel.
	Width, Height int
	// Scale is device pixels per font pixel; default 2.
	Scale  int
	Panels []Panel
}

// Panel is one plot area with its own y axis.
type Panel struct {
	Title string // drawn at the panel's top left, e.g. "msg/s"
	// YMin is the bottom of the y axis; the top is the largest value, rounded up to a
	// tick. Values below YMin are clipped.
	YMin   float64
	Series []Series
}

// Series is one line.
type Series struct {
	Name   string
	Color  color.RGBA
	Dashed bool
	X, Y   []float64
}

// Colors that read well on white, for callers that do not pick their own.
var (
	Blue   = color.RGBA{31, 119, 180, 255}
	Orange = color.RGBA{255, 127, 14, 255}
	Green  = color.RGBA{44, 160, 44, 255}
	Red    = color.RGBA{214, 39, 40, 255}
	Purple = color.RGBA{148, 103, 189, 255}
	Gray   = color.RGBA{127, 127, 127, 255}
)

var (
	black     = color.RGBA{0, 0, 0, 255}
	gridColor = color.RGBA{225, 225, 225, 255}
)

func (c *Chart) validate() error {
	if c.Width == 0 {
		c.Width = 1200
	}
	if c.Height == 0 {
		c.Height = 60 + 300*len(c.Panels)
	}
	if c.Scale == 0 {
		c.Scale = 2
	}
	switch {
	case len(c.Panels) == 0 || len(c.Panels) > MaxPanels:
		return fmt.Errorf("linechart: %d panels, want 1 to %d", len(c.Panels), MaxPanels)
	case c.Width < 200 || c.Height < 100*len(c.Panels) || c.Width*c.Height > MaxPixels:
		return fmt.Errorf("linechart: size %dx%d out of range", c.Width, c.Height)
	case c.Scale < 1 || c.Scale > 8:
		return fmt.Errorf("linechart: scale %d, want 1 to 8", c.Scale)
	}
	for _, p := range c.Panels {
		for _, s := range p.Series {
			if len(s.X) != len(s.Y) || len(s.X) > MaxPoints {
				return fmt.Errorf("linechart: series %q has %d x and %d y values (at most %d)", s.Name, len(s.X), len(s.Y), MaxPoints)
			}
		}
	}
	return nil
}

// WritePNG renders the chart and encodes it to w.
func (c *Chart) WritePNG(w io.Writer) error {
	img, err := c.Render()
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

// Render draws the chart.
func (c *Chart) Render() (*image.RGBA, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, c.Width, c.Height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	th := textHeight(c.Scale)
	drawText(img, (c.Width-textWidth(c.Title, c.Scale))/2, th/2, c.Title, black, c.Scale)

	xmin, xmax, ok := xRange(c.Panels)
	if !ok {
		return nil, errors.New("linechart: no points")
	}
	xt := ticks(xmin, xmax, 10)
	xa := axis{lo: xt[0], hi: xt[len(xt)-1]}

	left, right := 14*(glyphW+1)*c.Scale/2+10, c.Width-20
	top := 2 * th
	bottom := c.Height - 3*th // room for x tick labels and the x label
	ph := (bottom - top) / len(c.Panels)
	for i, p := range c.Panels {
		area := image.Rect(left, top+i*ph+th+th/2, right, top+(i+1)*ph-th)
		c.drawPanel(img, area, p, xa, xt, i == len(c.Panels)-1)
	}
	drawText(img, (left+right-textWidth(c.XLabel, c.Scale))/2, c.Height-th-th/2, c.XLabel, black, c.Scale)
	return img, nil
}

// axis maps values in [lo, hi] onto a pixel range.
type axis struct{ lo, hi float64 }

func (a axis) px(v float64, from, to int) float64 {
	if a.hi == a.lo {
		return float64(from)
	}
	return float64(from) + (v-a.lo)/(a.hi-a.lo)*float64(to-from)
}

func (c *Chart) drawPanel(img *image.RGBA, area image.Rectangle, p Panel, xa axis, xt []float64, xLabels bool) {
	s := c.Scale
	th := textHeight(s)
	ymax := p.YMin
	for _, sr := range p.Series {
		for _, y := range sr.Y {
			if !math.IsNaN(y) && !math.IsInf(y, 0) {
				ymax = math.Max(ymax, y)
			}
		}
	}
	if ymax <= p.YMin {
		ymax = p.YMin + 1
	}
	yt := ticks(p.YMin, ymax, 5)
	ya := axis{lo: yt[0], hi: yt[len(yt)-1]}
	for _, y := range yt {
		py := int(math.Round(ya.px(y, area.Max.Y, area.Min.Y)))
		hline(img, area.Min.X, area.Max.X, py, gridColor)
		lbl := tickLabel(y)
		drawText(img, area.Min.X-8-textWidth(lbl, s), py-th/2, lbl, black, s)
	}
	for _, x := range xt {
		px := int(math.Round(xa.px(x, area.Min.X, area.Max.X)))
		vline(img, px, area.Min.Y, area.Max.Y, gridColor)
		if xLabels {
			lbl := tickLabel(x)
			drawText(img, px-textWidth(lbl, s)/2, area.Max.Y+th/2, lbl, black, s)
		}
	}
	hline(img, area.Min.X, area.Max.X, area.Max.Y, black)
	vline(img, area.Min.X, area.Min.Y, area.Max.Y, black)
	drawText(img, area.Min.X, area.Min.Y-th-th/2, p.Title, black, s)

	clip := area.Inset(-1)
	for _, sr := range p.Series {
		plot(img, clip, sr, func(x, y float64) (float64, float64) {
			return xa.px(x, area.Min.X, area.Max.X), ya.px(math.Max(y, ya.lo), area.Max.Y, area.Min.Y)
		})
	}
	// Legend: top right, one entry per series, right to left.
	lx := area.Max.X - 8
	for i := len(p.Series) - 1; i >= 0; i-- {
		sr := p.Series[i]
		w := textWidth(sr.Name, s)
		lx -= w
		drawText(img, lx, area.Min.Y-th-th/2, sr.Name, black, s)
		lx -= 6 + 24
		for d := range 3 {
			seg(img, clip.Union(image.Rect(lx, area.Min.Y-2*th, lx+25, area.Min.Y)), float64(lx), float64(area.Min.Y-th+d-1), float64(lx+24), float64(area.Min.Y-th+d-1), sr.Color, sr.Dashed, new(float64))
		}
		lx -= 16
	}
}

// plot draws a series as segments between consecutive finite points, two pixels wide.
func plot(img *image.RGBA, clip image.Rectangle, sr Series, toPx func(x, y float64) (float64, float64)) {
	var dashPos float64
	havePrev := false
	var px0, py0 float64
	for i := range sr.X {
		if math.IsNaN(sr.Y[i]) || math.IsInf(sr.Y[i], 0) || math.IsNaN(sr.X[i]) {
			havePrev = false
			continue
		}
		px, py := toPx(sr.X[i], sr.Y[i])
		if havePrev {
			seg(img, clip, px0, py0, px, py, sr.Color, sr.Dashed, &dashPos)
			seg(img, clip, px0, py0+1, px, py+1, sr.Color, sr.Dashed, new(float64))
		}
		px0, py0, havePrev = px, py, true
	}
}

// dashPeriod is the length in pixels of a dash plus its gap.
const dashPeriod = 12

// seg draws a one-pixel line from (x0, y0) to (x1, y1) within clip, stepping one pixel
// along its longer extent. dashPos carries the dash phase from segment to segment.
func seg(img *image.RGBA, clip image.Rectangle, x0, y0, x1, y1 float64, c color.RGBA, dashed bool, dashPos *float64) {
	dx, dy := x1-x0, y1-y0
	n := int(math.Ceil(math.Max(math.Abs(dx), math.Abs(dy))))
	if n == 0 {
		n = 1
	}
	step := math.Hypot(dx, dy) / float64(n)
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		if !dashed || math.Mod(*dashPos, dashPeriod) < dashPeriod*2/3 {
			p := image.Pt(int(math.Round(x0+t*dx)), int(math.Round(y0+t*dy)))
			if p.In(clip) {
				img.SetRGBA(p.X, p.Y, c)
			}
		}
		if i < n {
			*dashPos += step
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

// xRange is the smallest and largest finite x over every series of every panel.
func xRange(panels []Panel) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range panels {
		for _, s := range p.Series {
			for _, x := range s.X {
				if !math.IsNaN(x) && !math.IsInf(x, 0) {
					lo, hi = math.Min(lo, x), math.Max(hi, x)
				}
			}
		}
	}
	if lo > hi {
		return 0, 0, false
	}
	if lo == hi {
		hi = lo + 1
	}
	return lo, hi, true
}

// ticks are about n round values covering [lo, hi]: multiples of 1, 2 or 5 times a power
// of ten, the first at or below lo and the last at or above hi.
func ticks(lo, hi float64, n int) []float64 {
	step := niceStep((hi - lo) / float64(n))
	first := math.Floor(lo/step) * step
	var out []float64
	for i := 0; ; i++ {
		v := first + float64(i)*step
		out = append(out, v)
		if v >= hi-step*1e-9 || i > 4*n {
			return out
		}
	}
}

// niceStep is the smallest of 1, 2, 5 times a power of ten at least raw.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// tickLabel prints a tick value briefly: 250000 as 250K, 1500000 as 1.5M, 0.5 as 0.5.
func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e4:
		return trim(v/1e3) + "K"
	default:
		return trim(v)
	}
}

func trim(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
