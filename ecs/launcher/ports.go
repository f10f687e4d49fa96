package launcher

import (
	"fmt"
	"net"
	"strconv"
)

// CheckPortsFree fails with ErrPortInUse naming the first taken port.
func CheckPortsFree(host string, ports map[int]string) error {
	for port, what := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("%w: %s port %d on %s: %v", ErrPortInUse, what, port, host, err)
		}
		l.Close()
	}
	return nil
}
