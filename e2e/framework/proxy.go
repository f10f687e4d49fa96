package framework

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// FaultKind is what a Network does to the bytes between two nodes.
type FaultKind int

// Fault kinds.
const (
	// Pass forwards bytes as they come.
	Pass FaultKind = iota
	// Blackhole holds every byte (both directions) and accepts new
	// connections without answering: a partition in which packets are lost
	// and TCP retransmits them once it heals.
	Blackhole
	// Delay forwards every chunk after Fault.Delay.
	Delay
	// Drop resets open connections and every new one: the peer looks down.
	Drop
)

func (k FaultKind) String() string {
	return [...]string{"pass", "blackhole", "delay", "drop"}[k]
}

// Fault is the treatment of the traffic from one node to another.
type Fault struct {
	Kind  FaultKind
	Delay time.Duration // for Delay
}

// Any matches every node in Network.Set.
const Any = "*"

type link struct{ from, to string }

// Network owns the TCP proxies between a cluster's nodes and the faults
// applied to them. A proxy fronts one node (its target); each connection
// through it is attributed to the node that opened it, fixed per proxy or
// found through /proc (see socketOwner), so that one node's traffic to
// another can be cut while the rest flows. Faults apply to both directions
// of a connection.
type Network struct {
	mu      sync.Mutex // guards the fields below
	faults  map[link]Fault
	changed chan struct{}  // closed and replaced at every Set
	pids    map[int]string // process id -> node name, for attribution
	proxies []*Proxy
}

// NewNetwork returns a network with no faults.
func NewNetwork() *Network {
	return &Network{faults: map[link]Fault{}, changed: make(chan struct{}), pids: map[int]string{}}
}

// SetPID records that node name runs as process pid (after every restart).
func (n *Network) SetPID(pid int, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p, nm := range n.pids {
		if nm == name {
			delete(n.pids, p)
		}
	}
	n.pids[pid] = name
}

// Set applies f to the traffic from node from to node to (either may be
// Any); Fault{} (Pass) removes the fault.
func (n *Network) Set(from, to string, f Fault) {
	n.mu.Lock()
	if f.Kind == Pass {
		delete(n.faults, link{from, to})
	} else {
		n.faults[link{from, to}] = f
	}
	close(n.changed)
	n.changed = make(chan struct{})
	proxies := append([]*Proxy(nil), n.proxies...)
	n.mu.Unlock()
	if f.Kind == Drop {
		for _, p := range proxies {
			p.dropMatching()
		}
	}
}

// Heal removes every fault.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.faults)
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// fault returns the fault between from and to, and a channel closed at the
// next change. The most specific rule wins: from->to, then Any->to, then
// from->Any.
func (n *Network) fault(from, to string) (Fault, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range []link{{from, to}, {Any, to}, {from, Any}} {
		if f, ok := n.faults[l]; ok {
			return f, n.changed
		}
	}
	return Fault{}, n.changed
}

func (n *Network) nameOf(pid int) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pids[pid]
}

func (n *Network) pidList() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps := make([]int, 0, len(n.pids))
	for p := range n.pids {
		ps = append(ps, p)
	}
	return ps
}

// Proxy is a TCP proxy in front of one node, owned by a Network.
type Proxy struct {
	net    *Network
	to     string // the node behind the proxy
	from   string // the only node that dials this proxy; "" to find out per connection
	target string
	ln     net.Listener

	mu    sync.Mutex // guards conns and closed
	conns map[*proxyConn]struct{}

	closed bool
	wg     sync.WaitGroup
}

type proxyConn struct {
	from       string
	in, out    net.Conn
	closeOnce  sync.Once
	closedChan chan struct{}
}

func (c *proxyConn) close(reset bool) {
	c.closeOnce.Do(func() {
		if reset {
			setLinger0(c.in)
			setLinger0(c.out)
		}
		_ = c.in.Close()
		_ = c.out.Close()
		close(c.closedChan)
	})
}

func setLinger0(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// Proxy starts a proxy on 127.0.0.1:listenPort (0: any free port) that
// forwards to target, the address of node to. from names the node that
// dials it when only one does (an etcd proxy per process), or "" to
// attribute each connection to its process through /proc.
func (n *Network) Proxy(listenPort int, to, from, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", Addr(listenPort))
	if err != nil {
		return nil, fmt.Errorf("proxy for %s: %w", to, err)
	}
	p := &Proxy{net: n, to: to, from: from, target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	n.mu.Lock()
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, c := range conns {
		c.close(false)
	}
	p.wg.Wait()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(in)
	}
}

func (p *Proxy) serve(in net.Conn) {
	defer p.wg.Done()
	from := p.from
	if from == "" {
		from = p.net.nameOf(socketOwner(in, p.net.pidList()))
	}
	if f, _ := p.net.fault(from, p.to); f.Kind == Drop {
		setLinger0(in)
		_ = in.Close()
		return
	}
	out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		setLinger0(in)
		_ = in.Close()
		return
	}
	c := &proxyConn{from: from, in: in, out: out, closedChan: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close(false)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(c, in, out) }()
	go func() { defer wg.Done(); p.pipe(c, out, in) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pipe copies src to dst chunk by chunk, applying the current fault to each
// chunk; either side failing closes the whole connection.
func (p *Proxy) pipe(c *proxyConn, src, dst io.ReadWriter) {
	defer c.close(false)
	buf := make([]byte, 32<<10)
	for {
		nr, err := src.Read(buf)
		if nr > 0 && !p.deliver(c, dst, buf[:nr]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// deliver writes b to dst once the fault allows it; false when the
// connection is to end.
func (p *Proxy) deliver(c *proxyConn, dst io.Writer, b []byte) bool {
	for {
		f, changed := p.net.fault(c.from, p.to)
		switch f.Kind {
		case Blackhole:
			select {
			case <-changed:
				continue
			case <-c.closedChan:
				return false
			}
		case Drop:
			c.close(true)
			return false
		case Delay:
			select {
			case <-time.After(f.Delay):
			case <-c.closedChan:
				return false
			}
		}
		_, err := dst.Write(b)
		return err == nil
	}
}

// dropMatching resets the open connections a Drop fault now covers.
func (p *Proxy) dropMatching() {
	p.mu.Lock()
	var drop []*proxyConn
	for c := range p.conns {
		if f, _ := p.net.fault(c.from, p.to); f.Kind == Drop {
			drop = append(drop, c)
		}
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.close(true)
	}
}
