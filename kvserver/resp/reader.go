package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Redis's own bounds on a request (server.h).
const (
	// MaxInlineBytes bounds an inline request line and the count line of
	// a multibulk request (PROTO_INLINE_MAX_SIZE).
	MaxInlineBytes = 64 << 10
	// MaxArgs bounds the elements of a multibulk request.
	MaxArgs = 1024 * 1024
	// Before AUTH on a cluster with users, a request may hold at most
	// unauthArgs arguments of unauthBulkBytes each, as in Redis 7, so an
	// unknown client cannot make the server buffer much.
	unauthArgs      = 10
	unauthBulkBytes = 16 << 10
)

// Limits bound one request; the reader refuses a larger one with a
// ProtocolError before reading its body.
type Limits struct {
	MaxArgs         int // elements of a multibulk request
	MaxBulkBytes    int // one argument
	MaxRequestBytes int // all arguments together
}

// Reader reads requests: RESP multibulk arrays of bulk strings, or inline
// lines (redis-cli and telnet style).
type Reader struct {
	r   *bufio.Reader
	lim Limits
}

// NewReader returns a reader of r under lim.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 16<<10), lim: lim}
}

// SetLimits changes the limits from the next request on.
func (r *Reader) SetLimits(lim Limits) { r.lim = lim }

// Buffered is the number of bytes already read from the connection and
// not yet parsed: more than 0 means a pipelined request is waiting.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// ReadCommand returns the next request's arguments; nil for an empty one
// (a blank inline line, "*0"), which gets no answer. It returns a
// *ProtocolError for a request that breaks the format or the limits,
// io.EOF when the stream ends between requests and io.ErrUnexpectedEOF
// inside one.
func (r *Reader) ReadCommand() ([][]byte, error) {
	b, err := r.r.Peek(1)
	if err != nil {
		return nil, err
	}
	if b[0] != '*' {
		line, err := r.line(MaxInlineBytes, "too big inline request")
		if err != nil {
			return nil, err
		}
		return SplitArgs(line)
	}
	line, err := r.line(MaxInlineBytes, "too big mbulk count string")
	if err != nil {
		return nil, err
	}
	n, ok := parseInt(line[1:])
	if !ok || n > int64(r.lim.MaxArgs) {
		return nil, protoErr("invalid multibulk length")
	}
	if n <= 0 {
		return nil, nil
	}
	return r.bulks(int(n))
}

// bulks reads the n bulk strings of a multibulk request.
func (r *Reader) bulks(n int) ([][]byte, error) {
	args := make([][]byte, 0, min(n, 1024))
	total := 0
	for range n {
		line, err := r.line(MaxInlineBytes, "too big bulk count string")
		if err != nil {
			return nil, unexpected(err)
		}
		if len(line) == 0 || line[0] != '$' {
			got := byte('\r') // the empty line's end, as Redis reports it
			if len(line) > 0 {
				got = line[0]
			}
			return nil, protoErr("expected '$', got '" + string(got) + "'")
		}
		size, ok := parseInt(line[1:])
		if !ok || size < 0 || size > int64(r.lim.MaxBulkBytes) || total+int(size) > r.lim.MaxRequestBytes {
			return nil, protoErr("invalid bulk length")
		}
		total += int(size)
		arg, err := r.bulk(int(size))
		if err != nil {
			return nil, err
		}
		args = append(args, arg)
	}
	return args, nil
}

// bulk reads size bytes and their CRLF. A large argument grows as its
// bytes arrive, so a client that only announces one costs nothing.
func (r *Reader) bulk(size int) ([]byte, error) {
	var arg []byte
	if size <= 64<<10 {
		arg = make([]byte, size)
		if _, err := io.ReadFull(r.r, arg); err != nil {
			return nil, unexpected(err)
		}
	} else {
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, r.r, int64(size)); err != nil {
			return nil, unexpected(err)
		}
		arg = buf.Bytes()
	}
	var crlf [2]byte
	if _, err := io.ReadFull(r.r, crlf[:]); err != nil {
		return nil, unexpected(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return nil, protoErr("invalid bulk length")
	}
	return arg, nil
}

// line reads one line, without its "\n" or "\r\n"; a longer one than max
// is a protocol error with msg.
func (r *Reader) line(max int, msg string) ([]byte, error) {
	var long []byte
	for {
		part, err := r.r.ReadSlice('\n')
		if err == nil && long == nil {
			return trimEOL(part), nil
		}
		if len(long)+len(part) > max {
			return nil, protoErr(msg)
		}
		long = append(long, part...)
		switch {
		case err == nil:
			return trimEOL(long), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(long) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// unexpected turns an end of stream inside a request into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseInt parses a strict base-10 int64, as Redis's string2ll: no sign
// but '-', no leading zeros or spaces.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 || (len(b) > 1 && b[0] == '0') || b[0] == '+' {
		return 0, false
	}
	if len(b) > 1 && b[0] == '-' && b[1] == '0' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// SplitArgs splits an inline request into arguments as Redis's
// sdssplitargs: spaces separate them; "double quotes" take \n, \r, \t,
// \b, \a, \xHH and \<char> escapes; 'single quotes' take \'; a closing
// quote must end the argument.
func SplitArgs(line []byte) ([][]byte, error) {
	var args [][]byte
	for i := 0; ; {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		arg, next, err := splitOne(line, i)
		if err != nil {
			return nil, err
		}
		args, i = append(args, arg), next
	}
}

// splitOne reads the argument at line[i:] and returns it and where the
// next one may start.
func splitOne(line []byte, i int) ([]byte, int, error) {
	arg := []byte{}
	var quote byte
	if line[i] == '"' || line[i] == '\'' {
		quote, i = line[i], i+1
	}
	for ; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == 0 && isSpace(c):
			return arg, i, nil
		case quote == 0:
			arg = append(arg, c)
		case c == quote:
			if i+1 < len(line) && !isSpace(line[i+1]) {
				return nil, 0, protoErr("unbalanced quotes in request")
			}
			return arg, i + 1, nil
		case c == '\\' && i+1 < len(line):
			var n int
			c, n = unescape(quote, line[i+1:])
			arg, i = append(arg, c), i+n
		default:
			arg = append(arg, c)
		}
	}
	if quote != 0 {
		return nil, 0, protoErr("unbalanced quotes in request")
	}
	return arg, i, nil
}

// unescape decodes the escape after a backslash inside quote: the byte and
// how many bytes after the backslash it used.
func unescape(quote byte, rest []byte) (byte, int) {
	if quote == '\'' {
		if rest[0] == '\'' {
			return '\'', 1
		}
		return '\\', 0
	}
	if rest[0] == 'x' && len(rest) >= 3 && isHex(rest[1]) && isHex(rest[2]) {
		v, _ := strconv.ParseUint(string(rest[1:3]), 16, 8)
		return byte(v), 3
	}
	switch rest[0] {
	case 'n':
		return '\n', 1
	case 'r':
		return '\r', 1
	case 't':
		return '\t', 1
	case 'b':
		return '\b', 1
	case 'a':
		return '\a', 1
	}
	return rest[0], 1
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
