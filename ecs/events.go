package ecs

import (
	"sync"
	"time"
)

// Event is one entry of the recent-events list (status page, `ecs status`).
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

// eventLog keeps the last maxEvents events.
type eventLog struct {
	mu     sync.Mutex // guards events
	events []Event
	count  func(kind string) // optional: counts events by kind (metrics)
}

const maxEvents = 100

func (l *eventLog) add(kind, detail string) {
	if l.count != nil {
		l.count(kind)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, Event{Time: time.Now(), Kind: kind, Detail: detail})
	if len(l.events) > maxEvents {
		l.events = l.events[len(l.events)-maxEvents:]
	}
}

func (l *eventLog) list() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}
