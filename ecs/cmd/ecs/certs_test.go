package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCertSpec(t *testing.T) {
	spec, err := certSpec([]string{"10.0.0.10"}, 2, []string{"x9=10.0.0.19,x9.example"}, []string{"client", "alice"}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.10", "127.0.0.1", "localhost", "::1"}, spec.ECSHosts)
	require.Len(t, spec.Servers, 3)
	require.Equal(t, "s1", spec.Servers[0].ID)
	require.Equal(t, []string{"10.0.0.10", "127.0.0.1", "localhost", "::1"}, spec.Servers[0].Hosts)
	require.Equal(t, []string{"10.0.0.19", "x9.example", "127.0.0.1", "localhost", "::1"}, spec.Servers[2].Hosts)

	for _, tt := range []struct {
		name    string
		n       int
		servers []string
		clients []string
		valid   time.Duration
		wantErr string
	}{
		{name: "no host list", servers: []string{"s1"}, valid: time.Hour, wantErr: "ID=HOST"},
		{name: "repeated id", n: 1, servers: []string{"s1=h"}, valid: time.Hour, wantErr: `"s1"`},
		{name: "reserved id", servers: []string{"ecs=h"}, valid: time.Hour, wantErr: `"ecs"`},
		{name: "bad id", servers: []string{"a/b=h"}, valid: time.Hour, wantErr: `"a/b"`},
		{name: "client named like a server", n: 1, clients: []string{"s1"}, valid: time.Hour, wantErr: `client name "s1"`},
		{name: "too short", valid: time.Minute, wantErr: "--valid-for"},
		{name: "negative n", n: -1, valid: time.Hour, wantErr: "-n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := certSpec(nil, tt.n, tt.servers, tt.clients, tt.valid)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
