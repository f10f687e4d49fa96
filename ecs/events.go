package ecs

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ecskv/ecskv/ecs/opclient"
)

// eventLog keeps the last maxEvents events.
type eventLog struct {
	mu     sync.Mutex // guards events
	events []opclient.Event
	count  func(kind string) // optional: counts events by kind (metrics)
	// announce, when set, gets the events an operator watching `ecs start`
	// wants to see as they happen (announced); the log stays quiet.
	announce func(opclient.Event)
}

// announced are the event kinds printed on the `ecs start` terminal: what
// happened to servers and what a rebalance did, one line each.
var announced = map[string]bool{
	"rebalance done": true, "server joined": true, "server removed": true,
	"server restarted": true, "servers launched": true,
}

const maxEvents = 100

func (l *eventLog) add(kind, detail string) {
	if l.count != nil {
		l.count(kind)
	}
	e := opclient.Event{Time: time.Now(), Kind: kind, Detail: detail}
	if l.announce != nil && announced[kind] {
		l.announce(e)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	if len(l.events) > maxEvents {
		l.events = l.events[len(l.events)-maxEvents:]
	}
}

func (l *eventLog) list() []opclient.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]opclient.Event(nil), l.events...)
}

// announceTo prints an event as one line on out (the ecs start terminal).
func announceTo(out io.Writer) func(opclient.Event) {
	if out == nil {
		return nil
	}
	var mu sync.Mutex
	return func(e opclient.Event) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%s %s: %s\n", e.Time.Format("15:04:05"), e.Kind, e.Detail)
	}
}
