// Package repl is the terminal-independent half of the kvclient REPL: a line
// tokenizer and parser (Parse, FromArgs), the command table with its help
// text, a Session that runs commands against a client and prints their
// results, and a Loop that feeds a Session from any line source. The binary
// (kvclient/cmd/kvclient) adds the terminal: readline, history, signals.
//
// Nothing here starts goroutines. A Session is used by one goroutine at a
// time (the loop that reads the lines).
package repl
