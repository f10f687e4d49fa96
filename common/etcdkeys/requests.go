package etcdkeys

import "encoding/json"

// ReadyPrefix prefixes every learner's ready/<id>/<partition> key.
func ReadyPrefix(cluster string) string { return Root(cluster) + "ready/" }

// RequestsPrefix prefixes the admin requests (`ecs add`, `ecs remove`) any
// host may write; the leader ECS handles and deletes them.
func RequestsPrefix(cluster string) string { return Root(cluster) + "ecs/requests/" }

// Request is the key of admin request id.
func Request(cluster, id string) string { return RequestsPrefix(cluster) + id }

// ResultsPrefix prefixes the leader's answers to admin requests.
func ResultsPrefix(cluster string) string { return Root(cluster) + "ecs/results/" }

// Result is the key of the leader's answer to request id.
func Result(cluster, id string) string { return ResultsPrefix(cluster) + id }

// ControllerState is the leader's own record (planned moves, servers being
// removed, rebalancing progress), written in the same transaction as the ring.
func ControllerState(cluster string) string { return Root(cluster) + "ecs/state" }

// Request kinds.
const (
	RequestAdd     = "add"
	RequestRemove  = "remove"
	RequestRestart = "restart"
)

// AdminRequest asks the leader ECS to change the cluster's membership.
type AdminRequest struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // RequestAdd, RequestRemove or RequestRestart
	// Count is how many servers `add` launches.
	Count int `json:"count,omitempty"`
	// Name, when set, is the id of the one server `add` launches (`ecs
	// replace` names the new server).
	Name string `json:"name,omitempty"`
	// Server is the id `remove` drains and removes, or `restart` relaunches.
	Server     string `json:"server,omitempty"`
	UnixMillis int64  `json:"unix_ms"`
}

// AdminResult is the leader's answer to an AdminRequest.
type AdminResult struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Servers lists the ids `add` launched.
	Servers []string `json:"servers,omitempty"`
	// Epoch is the ring epoch at which the request took effect.
	Epoch uint64 `json:"epoch"`
}

// Marshal encodes the request.
func (r AdminRequest) Marshal() []byte {
	b, _ := json.Marshal(r) // cannot fail: plain fields
	return b
}

// UnmarshalAdminRequest decodes a request.
func UnmarshalAdminRequest(b []byte) (AdminRequest, error) {
	var r AdminRequest
	err := json.Unmarshal(b, &r)
	return r, err
}

// Marshal encodes the result.
func (r AdminResult) Marshal() []byte {
	b, _ := json.Marshal(r) // cannot fail: plain fields
	return b
}

// UnmarshalAdminResult decodes a result.
func UnmarshalAdminResult(b []byte) (AdminResult, error) {
	var r AdminResult
	err := json.Unmarshal(b, &r)
	return r, err
}
