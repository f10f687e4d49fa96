package repl

import "strings"

// token is one word of a command line. quoted records that the word was
// written in quotes, so put never reads it as an option ("--ttl").
type token struct {
	text   string
	quoted bool
}

// escapes are the only backslash sequences allowed inside double quotes; a
// strict list makes a mistyped Windows path fail loudly instead of storing
// something the user did not type.
var escapes = map[byte]byte{'"': '"', '\\': '\\', 'n': '\n', 't': '\t', 'r': '\r'}

// isSpace reports ASCII white space. Bytes, not runes, so any byte string
// (invalid UTF-8 included) splits and prints back unchanged.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// tokenize splits line into words. A quote is special only at the start of a
// word, so unquoted values such as it's or 5'10" keep their quote marks, as
// the ECE419 clients stored them:
//
//	"..."  double quotes; \" \\ \n \t \r are the only escapes
//	'...'  single quotes; everything up to the next ' is literal
//
// A closing quote must end the word.
func tokenize(line string) ([]token, error) {
	var toks []token
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case isSpace(c):
			i++
		case c == '"' || c == '\'':
			text, n, err := readQuoted(line[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{text: text, quoted: true})
			i += n
		default:
			j := i
			for j < len(line) && !isSpace(line[j]) {
				j++
			}
			toks = append(toks, token{text: line[i:j]})
			i = j
		}
	}
	return toks, nil
}

// readQuoted reads the quoted word that starts s and returns its text and
// the number of bytes it used.
func readQuoted(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			if i+1 < len(s) && !isSpace(s[i+1]) {
				return "", 0, parseErrorf("text right after a closing %c quote; put a space after it", q)
			}
			return b.String(), i + 1, nil
		case c == '\\' && q == '"' && i+1 < len(s):
			e, ok := escapes[s[i+1]]
			if !ok {
				return "", 0, parseErrorf(`invalid escape: backslash before %q in double quotes; write \\ for a backslash, or use single quotes`, s[i+1])
			}
			b.WriteByte(e)
			i++
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, parseErrorf("unterminated %c quote", q)
}

// word returns s as it should be printed so that tokenize reads it back as
// s: unchanged when that is safe, otherwise in double quotes.
func word(s string) string {
	if s == "" || s[0] == '"' || s[0] == '\'' || strings.ContainsAny(s, " \t\n\v\f\r") {
		return quote(s)
	}
	return s
}

// quote returns s in double quotes with the escapes tokenize understands.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
