// Package config loads the typed configuration of every ecskv binary. It is
// the only package that imports viper: each binary builds a fresh viper with
// precedence flag > ECSKV_* environment > config file > default, unmarshals
// into a struct, and validates it with errors that name the bad field.
package config
