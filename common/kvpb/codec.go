package kvpb

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec this one wraps
	"google.golang.org/grpc/mem"
)

// fastMessage is a message with the marshalling vtprotobuf generated for
// it (*_vtproto.pb.go): the same wire format as the proto package's,
// without its reflection. The generated code does not check that string
// fields hold UTF-8, as the proto package does, so only the messages that
// check their own strings (stringsValid, below) take this path: the ones
// of the Batch and Replicate streams.
type fastMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
	stringsValid() bool
}

// codec replaces gRPC's "proto" codec in every process that links this
// package: the streams' messages go through vtprotobuf's code, anything
// else (etcd's messages, health checks) through the codec it replaced.
// Chain updates and batch results are most of a server's messages, and
// reflection-driven marshalling was 8% of a loaded server's CPU. The name
// and the bytes on the wire stay those of "proto", so servers and clients
// of either kind talk to each other.
type codec struct {
	fallback encoding.CodecV2
}

func init() {
	encoding.RegisterCodecV2(codec{fallback: encoding.GetCodecV2("proto")})
}

func (codec) Name() string { return "proto" }

// Marshal follows the proto codec: small messages in a buffer of their
// own, large ones in a pooled one.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(fastMessage)
	if !ok || !m.stringsValid() {
		return c.fallback.Marshal(v) // which refuses bad strings
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return nil, fmt.Errorf("kvpb: marshal %T: %w", v, err)
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, fmt.Errorf("kvpb: marshal %T: %w", v, err)
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal decodes into v, which gRPC always passes new; the generated
// code copies every byte field, so the buffer can go back to its pool.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(fastMessage)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	err := m.UnmarshalVT(buf.ReadOnlyData())
	buf.Free()
	if err == nil && !m.stringsValid() {
		return c.fallback.Unmarshal(data, v) // for the proto package's error
	}
	return err
}

func (m *ReplBatch) stringsValid() bool { return utf8.ValidString(m.GetFrom()) }

func (m *BatchRequest) stringsValid() bool {
	for _, op := range m.GetOps() {
		var h *RequestHeader
		switch o := op.GetOp().(type) {
		case *BatchOp_Put:
			h = o.Put.GetHeader()
		case *BatchOp_Get:
			h = o.Get.GetHeader()
		case *BatchOp_Delete:
			h = o.Delete.GetHeader()
		case *BatchOp_Incr:
			h = o.Incr.GetHeader()
		case *BatchOp_Expire:
			h = o.Expire.GetHeader()
		}
		if !validStrings(h.GetToken(), h.GetNamespace(), h.GetForwardedBy()) {
			return false
		}
	}
	return true
}

func (m *BatchResponse) stringsValid() bool {
	for _, r := range m.GetResults() {
		if !validStrings(r.GetError(), r.GetResponse().GetMessage(), r.GetResponse().GetServer()) {
			return false
		}
	}
	return true
}

func validStrings(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// UnmarshalChecked decodes data into m as the codec does, for transports
// other than gRPC: the generated code, then the check of its strings.
func (m *ReplBatch) UnmarshalChecked(data []byte) error {
	if err := m.UnmarshalVT(data); err != nil {
		return err
	}
	if !m.stringsValid() {
		return fmt.Errorf("kvpb: %T: string field is not valid UTF-8", m)
	}
	return nil
}
