// Package statuspage is the ECS's HTTP face besides /metrics: the status
// page at / (page.go, with the ring drawn as an SVG by ringsvg.go), the
// same status as JSON at /status, and Prometheus' HTTP service discovery
// at /sd (http.go). It renders an opclient.Status; the ECS (package ecs)
// registers it on its listener with a function that reads the status and
// adds its recent events.
//
// Concurrency: the handlers keep no state; each request reads the status
// afresh through the StatusFunc, which must be safe for concurrent use.
package statuspage
