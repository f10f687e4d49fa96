package statuspage

import (
	"html/template"
	"slices"
	"time"

	"github.com/ecskv/ecskv/ecs/opclient"
)

// pageData is what the status page renders.
type pageData struct {
	*opclient.Status
	Ring    *ringView
	Updated time.Time
	Recent  []opclient.Event  // newest first
	Colours map[string]string // server id -> its colour on the ring
}

func newPageData(st *opclient.Status) pageData {
	d := pageData{Status: st, Updated: time.Now(), Recent: slices.Clone(st.Events), Colours: map[string]string{}}
	slices.Reverse(d.Recent)
	if st.Ring() != nil {
		d.Ring = newRingView(st.Ring())
		for _, l := range d.Ring.Legend {
			d.Colours[l.ID] = l.Fill
		}
	}
	return d
}

// pageTmpl is the status page. The "live" part is fetched again every two
// seconds and swapped in, so the page updates itself without reloading.
var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ecskv {{.Cluster}}</title>
<noscript><meta http-equiv="refresh" content="5"></noscript>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.2em 0 .4em}
.grid{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start} .grid>div:last-child{flex:1;min-width:28em}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left} #servers td{white-space:nowrap}
.active{color:#17752a}.down{color:#b00020;font-weight:bold}.leaving,.joining{color:#a66b00}.removed{color:#888}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:-1px;margin-right:.3em}
.bad{color:#b00020;font-weight:bold} .muted{color:#777}
#ring path.under{fill:#d62728} #ring path.learning{fill:#7b3fa0}
progress{width:16em}
</style></head>
<body>
<div id="live" data-refreshes="0">{{template "live" .}}</div>
<script>
(function () {
  var live = document.getElementById('live'), n = 0;
  setInterval(function () {
    fetch('/?part=live', {cache: 'no-store'}).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function (html) {
      live.innerHTML = html;
      live.dataset.refreshes = String(++n);
    }).catch(function (e) {
      var s = document.getElementById('updated');
      if (s) s.textContent = 'ECS unreachable (' + e + '), retrying';
    });
  }, 2000);
})();
</script>
</body></html>
{{define "live"}}
<h1>ecskv cluster {{.Cluster}}</h1>
<p>epoch <b id="epoch">{{.Epoch}}</b> &middot; {{.Partitions}} partitions &middot; R = {{.Replicas}}
&middot; <span {{if .UnderReplicated}}class="bad"{{end}}>under-replicated {{.UnderReplicated}}</span>
&middot; <span {{if .Unavailable}}class="bad"{{end}}>unavailable {{.Unavailable}}</span>
&middot; learners {{.Learners}} &middot; leader {{with .Leader}}{{.}}{{else}}<span class="bad">none</span>{{end}}
&middot; <span id="updated" class="muted">updated {{.Updated.Format "15:04:05"}}</span></p>
<div class="grid">
<div>
{{with .Ring}}
<svg id="ring" xmlns="http://www.w3.org/2000/svg" width="{{.Size}}" height="{{.Size}}" viewBox="0 0 {{.Size}} {{.Size}}"
 data-partitions="{{.Partitions}}" role="img" aria-label="hash ring of {{.Partitions}} partitions coloured by head server">
{{$p := .Partitions}}
{{range .Arcs}}<path class="part" d="{{.D}}" fill="{{.Fill}}" stroke="#fff" stroke-width="0.5" data-head="{{.Head}}" data-from="{{.From}}" data-to="{{.To}}"><title>partitions {{.From}}{{if ne .From .To}}–{{.To}}{{end}}: {{if .Unavailable}}no live copy{{else}}{{.Chain}}{{end}}{{with .Learner}} (learner {{.}}){{end}}</title></path>
{{if .Under}}<path class="under" d="{{.Band true $p}}" data-from="{{.From}}" data-to="{{.To}}"><title>under-replicated</title></path>{{end}}
{{if .Learner}}<path class="learning" d="{{.Band false $p}}"><title>learner copying</title></path>{{end}}
{{end}}
<text x="50%" y="48%" text-anchor="middle" font-size="15">epoch {{$.Epoch}}</text>
<text x="50%" y="54%" text-anchor="middle" font-size="12" fill="#777">{{$p}} partitions</text>
</svg>
<p class="muted"><span class="swatch" style="background:#d62728"></span>under-replicated
<span class="swatch" style="background:#7b3fa0"></span>learner copying
<span class="swatch" style="background:#222"></span>no live copy</p>
{{else}}<p class="bad">no ring published yet</p>{{end}}
</div>
<div>
<h2>servers</h2>
<table id="servers"><tr><th>id</th><th>address</th><th>zone</th><th>state</th><th>head</th><th>middle</th><th>tail</th><th>learning</th><th>pid</th><th>metrics</th></tr>
{{range .Servers}}<tr data-server="{{.ID}}"><td>{{with index $.Colours .ID}}<span class="swatch" style="background:{{.}}"></span>{{end}}{{.ID}}</td><td>{{.Address}}</td><td>{{.Zone}}</td><td class="{{.State}}">{{.State}}</td>
<td>{{index .Roles "head"}}</td><td>{{index .Roles "middle"}}</td><td>{{index .Roles "tail"}}</td><td>{{.Learning}}</td><td>{{.PID}}</td>
<td>{{if .Metrics}}<a href="http://{{.Metrics}}/metrics">{{.Metrics}}</a>{{end}}</td></tr>
{{end}}</table>
<h2>rebalancing</h2>
{{with .Moves}}{{if .Total}}<p><progress id="moves" max="{{.Total}}" value="{{.Done}}"></progress>
{{.Done}}/{{.Total}} partitions moved, {{.Pending}} pending, {{.InProgress}} copying, {{.KeysMoved}} keys moved
{{if gt .Pending 0}}&middot; ETA {{if lt .ETASeconds 0.0}}unknown{{else}}{{printf "%.0f" .ETASeconds}}s{{end}}{{end}}</p>
{{else if $.UnderReplicated}}<p class="bad">nothing can move: fewer active servers than R (add one with <code>ecs add</code>)</p>
{{else}}<p class="muted">balanced: nothing to move</p>{{end}}{{end}}
<h2>recent events</h2>
<table id="events"><tr><th>time</th><th>event</th><th>detail</th></tr>
{{range .Recent}}<tr><td>{{.Time.Format "15:04:05.000"}}</td><td>{{.Kind}}</td><td>{{.Detail}}</td></tr>
{{else}}<tr><td colspan="3" class="muted">none yet</td></tr>{{end}}</table>
</div>
</div>
{{end}}`))
