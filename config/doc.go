// Package config holds the typed configuration of every ecskv binary: the
// structs, their defaults, and validation with errors that name the bad
// field. It imports no configuration library, so the kvclient library can
// take a Client without pulling viper, cobra or pflag into its importers;
// package config/load fills these structs from flags, ECSKV_* environment
// variables and config files.
package config
