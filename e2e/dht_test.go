//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/require"
)

// The VoidPhone DHT messages, written here from the byte layouts alone
// (size:u16 | type:u16 in network byte order, size counting the header).
const (
	dhtPut     = 650
	dhtGet     = 651
	dhtSuccess = 652
	dhtFailure = 653
)

// dhtKey is a 32-byte key named by s.
func dhtKey(s string) []byte {
	k := sha256.Sum256([]byte(s))
	return k[:]
}

func dhtMsg(typ uint16, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	out := binary.BigEndian.AppendUint16(nil, uint16(4+len(b)))
	out = binary.BigEndian.AppendUint16(out, typ)
	return append(out, b...)
}

func dhtPutMsg(key, value []byte, ttl uint16) []byte {
	// ttl:u16 | replication:u8 | reserved:u8 | key | value
	return dhtMsg(dhtPut, binary.BigEndian.AppendUint16(nil, ttl), []byte{3, 0}, key, value)
}

func dhtGetMsg(key []byte) []byte { return dhtMsg(dhtGet, key) }

// dhtAnswer is a SUCCESS or FAILURE read off the wire.
type dhtAnswer struct {
	typ   uint16
	key   []byte
	value []byte
}

func (a dhtAnswer) String() string {
	return fmt.Sprintf("type %d key %x value %q", a.typ, a.key[:4], a.value)
}

func readDHT(conn net.Conn) (dhtAnswer, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return dhtAnswer{}, err
	}
	size, typ := binary.BigEndian.Uint16(hdr[:]), binary.BigEndian.Uint16(hdr[2:])
	if size < 4+32 {
		return dhtAnswer{}, fmt.Errorf("answer of %d bytes", size)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(conn, body); err != nil {
		return dhtAnswer{}, err
	}
	return dhtAnswer{typ: typ, key: body[:32], value: body[32:]}, nil
}

func dialDHT(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	return conn
}

func sendDHT(t *testing.T, conn net.Conn, msgs ...[]byte) {
	t.Helper()
	_, err := conn.Write(bytes.Join(msgs, nil))
	require.NoError(t, err)
}

// requireAnswer reads one answer and checks it is SUCCESS with value, or
// FAILURE when value is nil, for key.
func requireAnswer(t *testing.T, conn net.Conn, key, value []byte) {
	t.Helper()
	a, err := readDHT(conn)
	require.NoError(t, err)
	require.Equal(t, key, a.key, "answer for another key")
	if value == nil {
		require.Equal(t, uint16(dhtFailure), a.typ, "want FAILURE, got %v", a)
		require.Equal(t, 0, len(a.value), "FAILURE carries only the key")
		return
	}
	require.Equal(t, uint16(dhtSuccess), a.typ, "want SUCCESS, got %v", a)
	require.Equal(t, value, a.value)
}

// getDHT asks addr for key on a connection of its own: the value, or nil
// for FAILURE.
func getDHT(t *testing.T, addr string, key []byte) []byte {
	t.Helper()
	conn := dialDHT(t, addr)
	defer conn.Close()
	sendDHT(t, conn, dhtGetMsg(key))
	a, err := readDHT(conn)
	require.NoError(t, err)
	require.Equal(t, key, a.key)
	if a.typ == dhtFailure {
		return nil
	}
	require.Equal(t, uint16(dhtSuccess), a.typ, "%v", a)
	return a.value
}

// TestDHT runs the VoidPhone DHT API of a three-server cluster (R=3,
// values up to 4 KiB) through raw sockets.
func TestDHT(t *testing.T) {
	base := testutil.FreePortRange(t, 3)
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3),
		framework.WithArgs("--dht-base-port", strconv.Itoa(base), "--max-value-bytes", "4096"))
	addr := func(i int) string { return framework.Addr(base + i - 1) }
	for i := 1; i <= 3; i++ {
		testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
			conn, err := net.Dial("tcp", addr(i))
			if err == nil {
				_ = conn.Close()
			}
			return err == nil
		}, "s%d serves the DHT API", i)
	}

	t.Run("put on one server, get through the others", func(t *testing.T) {
		key, value := dhtKey("across"), []byte("stored through s1")
		conn := dialDHT(t, addr(1))
		sendDHT(t, conn, dhtPutMsg(key, value, 0), dhtGetMsg(key))
		requireAnswer(t, conn, key, value) // a GET after a PUT on one connection sees it
		for _, i := range []int{2, 3} {
			require.Equal(t, value, getDHT(t, addr(i), key), "read through s%d", i)
		}
		conn2 := dialDHT(t, addr(2))
		sendDHT(t, conn2, dhtPutMsg(key, []byte("overwritten through s2"), 0))
		testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
			return string(getDHT(t, addr(3), key)) == "overwritten through s2"
		}, "an overwrite through s2 reads through s3")
	})

	t.Run("missing key", func(t *testing.T) {
		conn := dialDHT(t, addr(2))
		key := dhtKey("never put")
		sendDHT(t, conn, dhtGetMsg(key))
		requireAnswer(t, conn, key, nil)
	})

	t.Run("pipelined", func(t *testing.T) {
		const n = 200
		conn := dialDHT(t, addr(3))
		var reqs [][]byte
		for i := range n {
			key := dhtKey(fmt.Sprintf("pipelined-%d", i%50)) // keys repeat: later PUTs win
			reqs = append(reqs, dhtPutMsg(key, []byte(fmt.Sprintf("v%d", i)), 60), dhtGetMsg(key))
		}
		reqs = append(reqs, dhtGetMsg(dhtKey("pipelined-missing")))
		go func() { _, _ = conn.Write(bytes.Join(reqs, nil)) }() // one stream of 401 requests
		start := time.Now()
		for i := range n {
			requireAnswer(t, conn, dhtKey(fmt.Sprintf("pipelined-%d", i%50)), []byte(fmt.Sprintf("v%d", i)))
		}
		requireAnswer(t, conn, dhtKey("pipelined-missing"), nil)
		t.Logf("%d pipelined PUT+GET pairs answered in order in %v", n, time.Since(start).Round(time.Millisecond))
		for i := n - 50; i < n; i++ {
			require.Equal(t, []byte(fmt.Sprintf("v%d", i)), getDHT(t, addr(1), dhtKey(fmt.Sprintf("pipelined-%d", i%50))))
		}
	})

	t.Run("ttl expiry", func(t *testing.T) {
		key := dhtKey("short-lived")
		conn := dialDHT(t, addr(1))
		sendDHT(t, conn, dhtPutMsg(key, []byte("gone soon"), 1), dhtGetMsg(key))
		requireAnswer(t, conn, key, []byte("gone soon"))
		put := time.Now()
		testutil.Eventually(t, 10*time.Second, 100*time.Millisecond, func() bool {
			return getDHT(t, addr(2), key) == nil
		}, "a 1 s TTL expires")
		require.GreaterOrEqual(t, time.Since(put), 900*time.Millisecond, "not before its TTL")
		t.Logf("expired %v after the put", time.Since(put).Round(time.Millisecond))
	})

	t.Run("malformed messages close only their connection", func(t *testing.T) {
		known, untouched := dhtKey("known"), dhtKey("untouched")
		sendDHT(t, dialDHT(t, addr(1)), dhtPutMsg(known, []byte("still here"), 0))
		testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
			return getDHT(t, addr(1), known) != nil
		})
		metrics := "http://" + c.MetricsAddr("s1") + "/metrics"
		closedBefore := scrapeMetric(t, metrics, `ecskv_dht_connections_closed_total{reason="malformed"}`)
		withType := func(b []byte, typ uint16) []byte { binary.BigEndian.PutUint16(b[2:], typ); return b }
		withSize := func(b []byte, size uint16) []byte { binary.BigEndian.PutUint16(b, size); return b }
		cases := []struct {
			name string
			msg  []byte
		}{
			{"size below the header", []byte{0x00, 0x03, 0x02, 0x8b}},
			{"size below the body", withSize(dhtGetMsg(untouched), 32)},
			{"size above the body", withSize(dhtGetMsg(untouched), 40)}, // takes 4 bytes of the next message
			{"unknown type", withType(dhtPutMsg(untouched, []byte("x"), 0), 654)},
			{"a 31-byte key", dhtGetMsg(untouched[:31])},
			{"a 33-byte key", dhtGetMsg(append(bytes.Clone(untouched), 0))},
			{"a PUT too short for its key", dhtMsg(dhtPut, []byte{0, 0, 0, 0}, untouched[:31])},
			{"a client's SUCCESS", dhtMsg(dhtSuccess, untouched, []byte("x"))},
			{"a value over the cluster's limit", dhtPutMsg(untouched, make([]byte, 4097), 0)},
		}
		other := dialDHT(t, addr(1))
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				conn := dialDHT(t, addr(1))
				// A request before the malformed one is answered; the PUT
				// after it never runs.
				sendDHT(t, conn, dhtGetMsg(known), tc.msg, dhtPutMsg(untouched, []byte("after"), 0))
				requireAnswer(t, conn, known, []byte("still here"))
				_, err := readDHT(conn)
				require.True(t, errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err),
					"the server closes the connection, got %v", err)
				sendDHT(t, other, dhtGetMsg(known), dhtGetMsg(untouched))
				requireAnswer(t, other, known, []byte("still here"))
				requireAnswer(t, other, untouched, nil)
			})
		}
		require.Equal(t, closedBefore+float64(len(cases)),
			scrapeMetric(t, metrics, `ecskv_dht_connections_closed_total{reason="malformed"}`))
		logged := func() bool {
			for _, l := range append(c.ECS().Stdout(), c.ECS().Stderr()...) {
				if strings.Contains(l, "malformed message") {
					return true
				}
			}
			return false
		}
		testutil.Eventually(t, 5*time.Second, 50*time.Millisecond, logged, "the server logs why it closed")
	})

	t.Run("metrics", func(t *testing.T) {
		var gets float64
		for i := 1; i <= 3; i++ {
			m := "http://" + c.MetricsAddr(fmt.Sprintf("s%d", i)) + "/metrics"
			gets += scrapeMetric(t, m, `ecskv_dht_requests_total{op="get",result="ok"}`)
			require.Zero(t, scrapeMetric(t, m, `ecskv_dht_requests_total{op="put",result="error"}`), "s%d", i)
		}
		require.Greater(t, gets, 200.0)
	})
}

// isReset: the server closed with unread bytes from the client pending,
// which the kernel turns into a reset.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
