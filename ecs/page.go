package ecs

import "html/template"

// pageTmpl is the status page; it reloads itself every two seconds.
var pageTmpl = template.Must(template.New("status").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>ecskv {{.Cluster}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}
.down{color:#b00}.active{color:#070}</style></head><body>
<h1>ecskv cluster {{.Cluster}}</h1>
<p>epoch {{.Epoch}} &middot; {{.Partitions}} partitions &middot; {{.Replicas}} replicas &middot;
under-replicated {{.UnderReplicated}} &middot; unavailable {{.Unavailable}} &middot; learners {{.Learners}}</p>
<p>rebalancing: {{with .Moves}}{{.Done}}/{{.Total}} partitions moved, {{.Pending}} pending, {{.InProgress}} copying,
{{.KeysMoved}} keys moved{{if gt .Pending 0}}, ETA {{if lt .ETASeconds 0.0}}unknown{{else}}{{printf "%.0f" .ETASeconds}}s{{end}}{{end}}{{end}}</p>
<p>leader: {{.Leader}}</p>
<table><tr><th>id</th><th>address</th><th>state</th><th>head</th><th>middle</th><th>tail</th><th>learning</th><th>pid</th><th>metrics</th></tr>
{{range .Servers}}<tr><td>{{.ID}}</td><td>{{.Address}}</td><td class="{{.State}}">{{.State}}</td>
<td>{{index .Roles "head"}}</td><td>{{index .Roles "middle"}}</td><td>{{index .Roles "tail"}}</td><td>{{.Learning}}</td><td>{{.PID}}</td>
<td>{{if .Metrics}}<a href="http://{{.Metrics}}/metrics">{{.Metrics}}</a>{{end}}</td></tr>
{{end}}</table>
<h2>recent events</h2><ul>{{range .Events}}<li>{{.Time.Format "15:04:05.000"}} {{.Kind}}: {{.Detail}}</li>{{end}}</ul>
</body></html>`))
