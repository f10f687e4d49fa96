package resp

import (
	"context"
	"strconv"
	"strings"
)

// defaultScanCount is Redis's COUNT when none is given.
const defaultScanCount = 10

// scanArgs are SCAN's options.
type scanArgs struct {
	pattern string // "" = every key
	count   int
	typ     string // "" or a type; only "string" keys exist
}

func parseScan(args [][]byte) (scanArgs, string) {
	a := scanArgs{count: defaultScanCount}
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return a, errSyntax
		}
		switch strings.ToUpper(string(args[i])) {
		case "MATCH":
			a.pattern = string(args[i+1])
		case "COUNT":
			n, ok := parseInt(args[i+1])
			if !ok {
				return a, errNotInteger
			}
			if n < 1 {
				return a, errSyntax
			}
			a.count = int(min(n, 1<<20))
		case "TYPE":
			a.typ = strings.ToLower(string(args[i+1]))
		default:
			return a, errSyntax
		}
	}
	return a, ""
}

// cmdScan is SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. The cluster's
// cursor is opaque, so the client gets a number standing for it on this
// connection. A pattern's literal prefix goes to the cluster; the rest is
// matched here, so a page may hold fewer keys than COUNT, as in Redis.
func cmdScan(ctx context.Context, s *session, args [][]byte) string {
	n, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		s.out.err("ERR invalid cursor")
		return resultRefused
	}
	cursor, ok := "", true
	if n != 0 {
		cursor, ok = s.cursors.get(n)
	}
	if !ok {
		s.out.err("ERR invalid cursor")
		return resultRefused
	}
	a, msg := parseScan(args[2:])
	if msg != "" {
		s.out.err(msg)
		return resultRefused
	}
	keys, next, err := s.keyspace().Scan(ctx, literalPrefix(a.pattern), cursor, a.count)
	if err != nil {
		return s.failed(err)
	}
	var out []string
	for _, k := range keys {
		if (a.typ == "" || a.typ == "string") && (a.pattern == "" || Match(a.pattern, k)) {
			out = append(out, k)
		}
	}
	s.out.array(2)
	if next == "" {
		s.out.bulkString("0")
	} else {
		s.out.bulkString(strconv.FormatUint(s.cursors.put(next), 10))
	}
	s.out.strings(out)
	return resultOK
}

// literalPrefix is the part of a glob pattern before its first special
// character: every key it matches starts with it.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// Match reports whether s matches the Redis glob pattern: * any run, ?
// one byte, [abc] [^a-z] a class, \x the byte x. On a mismatch it goes
// back to the latest star only, so it takes at most len(pattern)*len(s)
// steps, whatever the pattern.
func Match(pattern, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0 // the latest '*' and where in s its run ends
	for si < len(s) {
		if pi < len(pattern) {
			switch pattern[pi] {
			case '*':
				star, mark = pi, si
				pi++
				continue
			case '?':
				pi, si = pi+1, si+1
				continue
			case '[':
				if ok, rest := matchClass(pattern[pi+1:], s[si]); ok {
					pi, si = len(pattern)-len(rest), si+1
					continue
				}
			default:
				q := pi
				if pattern[q] == '\\' && q+1 < len(pattern) {
					q++
				}
				if pattern[q] == s[si] {
					pi, si = q+1, si+1
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		mark++
		pi, si = star+1, mark
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// matchClass matches c against the class that p starts (after '[') and
// returns the pattern after its ']'. An unclosed class runs to the end,
// as in Redis.
func matchClass(p string, c byte) (bool, string) {
	not := len(p) > 0 && p[0] == '^'
	if not {
		p = p[1:]
	}
	match := false
	for len(p) > 0 && p[0] != ']' {
		switch {
		case p[0] == '\\' && len(p) > 1:
			match = match || p[1] == c
			p = p[2:]
		case len(p) > 2 && p[1] == '-':
			lo, hi := p[0], p[2]
			if lo > hi {
				lo, hi = hi, lo
			}
			match = match || (c >= lo && c <= hi)
			p = p[3:]
		default:
			match = match || p[0] == c
			p = p[1:]
		}
	}
	if len(p) > 0 {
		p = p[1:] // the ']'
	}
	return match != not, p
}
