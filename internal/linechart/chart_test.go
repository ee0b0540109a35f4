package linechart

import (
	"bytes"
	"image/png"
	"math"
	"testing"
)

func TestGlyphsAreFiveBySeven(t *testing.T) {
	for r, g := range glyphs {
		for i, row := range g {
			if len(row) != glyphW {
				t.Errorf("glyph %q row %d: %q is %d wide, want %d", r, i, row, len(row), glyphW)
			}
			for _, c := range row {
				if c != '#' && c != '.' {
					t.Errorf("glyph %q row %d: %q has %q", r, i, row, c)
				}
			}
		}
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		n      int
		want   []float64
	}{
		{0, 1, 5, []float64{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}},
		{0, 95, 5, []float64{0, 20, 40, 60, 80, 100}},
		{0, 250000, 5, []float64{0, 50000, 100000, 150000, 200000, 250000}},
		{3, 7, 2, []float64{2, 4, 6, 8}},
	} {
		got := ticks(tc.lo, tc.hi, tc.n)
		if len(got) != len(tc.want) {
			t.Errorf("ticks(%v, %v, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-9 {
				t.Errorf("ticks(%v, %v, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
				break
			}
		}
	}
}

func TestTickLabel(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 250: "250", 5000: "5000", 50000: "50K", 1500000: "1.5M"} {
		if got := tickLabel(v); got != want {
			t.Errorf("tickLabel(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestRender draws a two-panel chart and checks that it encodes, that the series'
// colours are on it, and that a NaN leaves a gap instead of failing.
func TestRender(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4, 5}
	c := &Chart{Title: "test chart", XLabel: "seconds", Width: 600, Height: 500, Panels: []Panel{
		{Title: "msg/s", Series: []Series{
			{Name: "http", Color: Blue, X: xs, Y: []float64{0, 10, 20, 30, 20, 10}},
			{Name: "direct", Color: Orange, Dashed: true, X: xs, Y: []float64{0, 30, math.NaN(), 60, 40, 0}},
		}},
		{Title: "p99 ms", Series: []Series{{Name: "http", Color: Green, X: xs, Y: []float64{5, 5, 5, 5, 5, 5}}}},
	}}
	img, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	found := map[[3]uint8]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := img.RGBAAt(x, y)
			found[[3]uint8{p.R, p.G, p.B}] = true
		}
	}
	for _, col := range []struct {
		name string
		r    [3]uint8
	}{{"blue", [3]uint8{Blue.R, Blue.G, Blue.B}}, {"orange", [3]uint8{Orange.R, Orange.G, Orange.B}}, {"green", [3]uint8{Green.R, Green.G, Green.B}}} {
		if !found[col.r] {
			t.Errorf("no %s pixel", col.name)
		}
	}
	var buf bytes.Buffer
	if err := c.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	for name, c := range map[string]*Chart{
		"no panels":  {},
		"mismatched": {Panels: []Panel{{Series: []Series{{X: []float64{1}, Y: nil}}}}},
		"too big":    {Width: 10000, Height: 10000, Panels: []Panel{{}}},
	} {
		if _, err := c.Render(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := (&Chart{Panels: []Panel{{}}}).Render(); err == nil {
		t.Error("no points: no error")
	}
}
