package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
)

// Chart geometry (SVG user units).
const (
	panelW, panelH = 560, 300
	marginL        = 70
	marginT        = 40
	marginB        = 50
)

var palette = []string{"#1f77b4", "#aec7e8", "#d62728", "#2ca02c", "#9467bd", "#8c564b"}

// chart draws four grouped bar charts in a 2x2 grid: throughput, p99
// latency, and the CPU seconds per 1,000 ops of the servers and of the
// client; one group per workload and one bar per system.
func chart(rows []row) []byte {
	var systems, loads []string
	for _, r := range rows {
		if !slices.Contains(systems, r.System) {
			systems = append(systems, r.System)
		}
		if !slices.Contains(loads, r.Workload) {
			loads = append(loads, r.Workload)
		}
	}
	var b bytes.Buffer
	w, h := 2*panelW+20, 2*panelH+60
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	panel(&b, 0, 0, "throughput (ops/s)", rows, systems, loads, func(r row) float64 { return r.OpsPerSec })
	panel(&b, panelW+20, 0, "p99 latency (ms)", rows, systems, loads, func(r row) float64 { return r.P99 })
	panel(&b, 0, panelH, "server CPU s per 1,000 ops", rows, systems, loads, func(r row) float64 { return r.ServerCPUPer1k })
	panel(&b, panelW+20, panelH, "client CPU s per 1,000 ops", rows, systems, loads, func(r row) float64 { return r.ClientCPUPer1k })
	for i, s := range systems { // legend
		x := marginL + i*150
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, 2*panelH+35, palette[i%len(palette)], x+16, 2*panelH+46, html.EscapeString(s))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// panel draws one bar chart with its top left corner at (x0, y0).
func panel(b *bytes.Buffer, x0, y0 int, title string, rows []row, systems, loads []string, val func(row) float64) {
	top := 0.0
	for _, r := range rows {
		top = max(top, val(r))
	}
	top = niceCeil(top)
	plotW, plotH := panelW-marginL-10, panelH-marginT-marginB
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", x0+marginL, y0+20, title)
	for i := 0; i <= 5; i++ { // axis with 6 ticks
		v := top * float64(i) / 5
		y := y0 + marginT + plotH - int(float64(plotH)*float64(i)/5)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/><text x="%d" y="%d" text-anchor="end">%s</text>`+"\n",
			x0+marginL, y, x0+marginL+plotW, y, x0+marginL-5, y+4, short(v))
	}
	groupW := float64(plotW) / float64(max(len(loads), 1))
	barW := groupW * 0.8 / float64(max(len(systems), 1))
	base := float64(y0 + marginT + plotH)
	for gi, l := range loads {
		gx := float64(x0+marginL) + groupW*float64(gi) + groupW*0.1
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", gx+groupW*0.4, base+18, l)
		for si, s := range systems {
			for _, r := range rows {
				if r.System != s || r.Workload != l || top == 0 {
					continue
				}
				h := float64(plotH) * val(r) / top
				fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
					gx+barW*float64(si), base-h, barW*0.9, h, palette[si%len(palette)], s, l, short(val(r)))
			}
		}
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
