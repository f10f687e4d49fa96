package kvpb

import (
	"slices"
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func header(ns string) *RequestHeader {
	return &RequestHeader{Epoch: 7, ChainVersion: 3, ClientId: 11, Seq: 12, Token: "tok", Namespace: ns, ForwardedBy: "s2"}
}

func streamMessages() []proto.Message {
	upd := &Update{Partition: 5, ChainVersion: 2, Seq: 9, ClientId: 4, ClientSeq: 8, ResultValue: []byte("old"),
		Ops: []*Op{{Ns: []byte("n"), Key: []byte("k"), Value: make([]byte, 1024), ExpiryMs: 99}}}
	return []proto.Message{
		&ReplBatch{From: "s1", SentUnixNano: 42, Msgs: []*ChainMsg{
			{Kind: 1, Partition: 5, ChainVersion: 2, Seq: 8, Entries: []*Update{upd, upd}},
			{Kind: 2, Partition: 6, ChainVersion: 1, Seq: 3, Hello: true, Trunc: 1},
		}},
		&BatchRequest{Ops: []*BatchOp{
			{Id: 1, TimeoutMs: 5, Op: &BatchOp_Put{Put: &PutRequest{Header: header(""), Key: []byte("k"), Value: []byte("v")}}},
			{Id: 2, Op: &BatchOp_Get{Get: &GetRequest{Header: header("_dht"), Key: []byte("k"), AnyMember: true}}},
			{Id: 3, Op: &BatchOp_Delete{Delete: &DeleteRequest{Header: header(""), Key: []byte("k")}}},
			{Id: 4, Op: &BatchOp_Incr{Incr: &IncrRequest{Header: header(""), Key: []byte("k"), Delta: -3}}},
			{Id: 5, Op: &BatchOp_Expire{Expire: &ExpireRequest{Header: header(""), Key: []byte("k"), TtlMs: 10}}},
		}},
		&BatchResponse{Results: []*BatchResult{
			{Id: 1, Response: &Response{Value: []byte("v"), Epoch: 3, Message: "m", Server: "s1"}},
			{Id: 2, Code: 14, Error: "unavailable"},
		}},
	}
}

func codecV2(t *testing.T) encoding.CodecV2 {
	c := encoding.GetCodecV2("proto")
	if _, ok := c.(codec); !ok {
		t.Fatalf("the proto codec is %T, not this package's", c)
	}
	return c
}

// The stream messages' bytes are the proto package's, both ways.
func TestCodecMatchesProto(t *testing.T) {
	c := codecV2(t)
	for _, m := range streamMessages() {
		data, err := c.Marshal(m)
		if err != nil {
			t.Fatalf("marshal %T: %v", m, err)
		}
		got := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(data.Materialize(), got); err != nil || !proto.Equal(got, m) {
			t.Fatalf("%T through the codec, decoded by proto: %v, %v", m, got, err)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got = m.ProtoReflect().New().Interface()
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil || !proto.Equal(got, m) {
			t.Fatalf("%T from proto, decoded by the codec: %v, %v", m, got, err)
		}
	}
}

// A string that is not UTF-8 is refused both ways, as the proto codec does.
func TestCodecRefusesBadStrings(t *testing.T) {
	c := codecV2(t)
	bad := []proto.Message{
		&ReplBatch{From: "s\xff"},
		&BatchRequest{Ops: []*BatchOp{{Op: &BatchOp_Put{Put: &PutRequest{Header: header("\xff")}}}}},
		&BatchRequest{Ops: []*BatchOp{{Op: &BatchOp_Expire{Expire: &ExpireRequest{Header: &RequestHeader{Token: "\xfe"}}}}}},
		&BatchResponse{Results: []*BatchResult{{Response: &Response{Server: "\xc3"}}}},
		&BatchResponse{Results: []*BatchResult{{Error: "\xc3("}}},
	}
	for _, m := range bad {
		if _, err := c.Marshal(m); err == nil {
			t.Errorf("marshal %v: no error", m)
		}
		b, err := m.(fastMessage).(interface{ MarshalVT() ([]byte, error) }).MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		got := m.ProtoReflect().New().Interface()
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err == nil {
			t.Errorf("unmarshal %v: no error", m)
		}
	}
}

// Messages of other packages take the proto codec's path.
func TestCodecFallsBack(t *testing.T) {
	c := codecV2(t)
	data, err := c.Marshal(wrapperspb.String("x"))
	if err != nil {
		t.Fatal(err)
	}
	var got wrapperspb.StringValue
	if err := c.Unmarshal(data, &got); err != nil || got.GetValue() != "x" {
		t.Fatalf("got %v, %v", &got, err)
	}
	if _, err := c.Marshal(wrapperspb.String("\xff")); err == nil {
		t.Fatal("bad string marshalled")
	}
}

// stringsValid checks exactly these string fields: one added to a stream
// message must be checked there too.
func TestCodecChecksEveryString(t *testing.T) {
	want := []string{
		"ecskv.v1.BatchResult.error", "ecskv.v1.ReplBatch.from", "ecskv.v1.RequestHeader.forwarded_by",
		"ecskv.v1.RequestHeader.namespace", "ecskv.v1.RequestHeader.token", "ecskv.v1.Response.message", "ecskv.v1.Response.server",
	}
	var got []string
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		for i := range md.Fields().Len() {
			f := md.Fields().Get(i)
			switch f.Kind() {
			case protoreflect.StringKind:
				got = append(got, string(f.FullName()))
			case protoreflect.MessageKind:
				walk(f.Message())
			}
		}
	}
	for _, m := range streamMessages() {
		walk(m.ProtoReflect().Descriptor())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("string fields of the stream messages: %q, stringsValid checks %q", got, want)
	}
}
