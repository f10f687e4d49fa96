package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Dashboard is the part of a Grafana dashboard JSON the preview draws.
type Dashboard struct {
	Title  string  `json:"title"`
	Panels []Panel `json:"panels"`
}

// Panel is one Grafana panel: a row header or a chart of PromQL targets.
type Panel struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr   string `json:"expr"`
		Legend string `json:"legendFormat"`
	} `json:"targets"`
}

// LoadDashboard reads a Grafana dashboard JSON file.
func LoadDashboard(path string) (*Dashboard, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// Series is one labelled series of a range query.
type Series struct {
	Labels map[string]string
	Points [][2]float64 // unix seconds, value
}

// QueryRange evaluates expr over [start, end] every step.
func (p *Prometheus) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	q := url.Values{"query": {expr}, "start": {strconv.FormatInt(start.Unix(), 10)},
		"end": {strconv.FormatInt(end.Unix(), 10)}, "step": {step.String()}}
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query_range?"+q.Encode(), &data); err != nil {
		return nil, fmt.Errorf("query_range %q: %w", expr, err)
	}
	out := make([]Series, 0, len(data.Result))
	for _, r := range data.Result {
		s := Series{Labels: r.Metric}
		for _, v := range r.Values {
			ts, _ := v[0].(float64)
			if f := parseValue(v[1]); !math.IsNaN(f) && !math.IsInf(f, 0) {
				s.Points = append(s.Points, [2]float64{ts, f})
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// PreviewHTML draws every chart panel of d from Prometheus over [start,
// end], in the dashboard's order and rows, as an HTML page of SVG charts:
// a faithful picture of the dashboard's queries on real data where Grafana
// itself is not installed. vars replaces dashboard variables.
func (p *Prometheus) PreviewHTML(ctx context.Context, d *Dashboard, start, end time.Time, vars map[string]string) (string, error) {
	var pairs []string
	for k, v := range vars {
		pairs = append(pairs, k, v)
	}
	subst := strings.NewReplacer(pairs...)
	step := max(time.Second, end.Sub(start)/200)
	type line struct {
		Label, Colour, Points string
	}
	type chart struct {
		Row, Title, Max string
		Lines           []line
	}
	var charts []chart
	row := ""
	for _, pn := range d.Panels {
		if pn.Type == "row" {
			row = pn.Title
			continue
		}
		c := chart{Row: row, Title: pn.Title}
		row = ""
		var all []Series
		var labels []string
		for _, tg := range pn.Targets {
			ss, err := p.QueryRange(ctx, subst.Replace(tg.Expr), start, end, step)
			if err != nil {
				return "", fmt.Errorf("panel %q: %w", pn.Title, err)
			}
			for _, s := range ss {
				all = append(all, s)
				labels = append(labels, legend(tg.Legend, s.Labels))
			}
		}
		hi := 0.0
		for _, s := range all {
			for _, pt := range s.Points {
				hi = max(hi, pt[1])
			}
		}
		if hi == 0 {
			hi = 1
		}
		c.Max = formatUnit(hi, pn.FieldConfig.Defaults.Unit)
		t0, span := float64(start.Unix()), end.Sub(start).Seconds()
		for i, s := range all {
			var b strings.Builder
			for _, pt := range s.Points {
				fmt.Fprintf(&b, "%.1f,%.1f ", (pt[0]-t0)/span*chartW, chartH-pt[1]/hi*chartH)
			}
			c.Lines = append(c.Lines, line{Label: labels[i], Colour: chartColours[i%len(chartColours)], Points: b.String()})
		}
		charts = append(charts, c)
	}
	var b strings.Builder
	err := previewTmpl.Execute(&b, map[string]any{"Title": d.Title, "Charts": charts,
		"From": start.Format("15:04:05"), "To": end.Format("15:04:05"), "W": chartW, "H": chartH})
	return b.String(), err
}

const chartW, chartH = 360.0, 120.0

var chartColours = []string{"#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#b877d9", "#f2495c", "#8ab8ff", "#fade2a"}

var legendVar = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

func legend(format string, labels map[string]string) string {
	if format == "" {
		return fmt.Sprint(labels)
	}
	return legendVar.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendVar.FindStringSubmatch(m)[1]]
	})
}

func formatUnit(v float64, unit string) string {
	switch unit {
	case "s":
		if v < 1 {
			return fmt.Sprintf("%.3g ms", v*1000)
		}
		return fmt.Sprintf("%.3g s", v)
	case "percentunit":
		return fmt.Sprintf("%.3g%%", v*100)
	case "bytes":
		return fmt.Sprintf("%.3g MiB", v/(1<<20))
	case "Bps":
		return fmt.Sprintf("%.3g KiB/s", v/(1<<10))
	case "ops":
		return fmt.Sprintf("%.3g ops/s", v)
	}
	return fmt.Sprintf("%.3g", v)
}

var previewTmpl = template.Must(template.New("preview").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title><style>
body{background:#111217;color:#ccccdc;font-family:system-ui,sans-serif;margin:12px}
h1{font-size:16px;margin:0 0 6px} .sub{color:#8e8e9e;font-size:12px}
.row{width:100%;font-size:14px;font-weight:600;margin:10px 0 2px;color:#fff}
.wrap{display:flex;flex-wrap:wrap;gap:8px} .p{background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px 8px;width:{{.W}}px}
.t{font-size:12px;font-weight:600;margin-bottom:4px} .lg{font-size:10px;color:#9fa7b3;max-height:28px;overflow:hidden}
.lg span{margin-right:8px} .mx{font-size:10px;fill:#8e8e9e}
</style></head><body>
<h1>{{.Title}}</h1><div class="sub">{{.From}} – {{.To}}, every panel of config/grafana/ecskv.json queried from Prometheus</div>
<div class="wrap">
{{range .Charts}}{{if .Row}}<div class="row">{{.Row}}</div>{{end}}
<div class="p"><div class="t">{{.Title}}</div>
<svg width="{{$.W}}" height="{{$.H}}" viewBox="0 0 {{$.W}} {{$.H}}"><line x1="0" y1="{{$.H}}" x2="{{$.W}}" y2="{{$.H}}" stroke="#2c3235"/>
<line x1="0" y1="0" x2="{{$.W}}" y2="0" stroke="#2c3235" stroke-dasharray="2 3"/><text class="mx" x="2" y="10">{{.Max}}</text>
{{range .Lines}}<polyline fill="none" stroke="{{.Colour}}" stroke-width="1.5" points="{{.Points}}"/>{{end}}</svg>
<div class="lg">{{range .Lines}}<span style="color:{{.Colour}}">&#9632;</span>{{.Label}} {{end}}</div></div>
{{end}}</div></body></html>`))
