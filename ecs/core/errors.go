package core

import "errors"

var (
	// ErrFrozen refuses a planned step on a partition with an unsynced member.
	ErrFrozen = errors.New("core: partition has an unsynced member")
	// ErrLearnerBusy refuses a step that needs the learner slot empty.
	ErrLearnerBusy = errors.New("core: chain has a learner")
	// ErrNotMember means a step names a server that is not in the chain.
	ErrNotMember = errors.New("core: not a member of the chain")
	// ErrMember means a step names a server that is in the chain already.
	ErrMember = errors.New("core: already in the chain")
	// ErrLastMember refuses a step that would leave a chain without members.
	ErrLastMember = errors.New("core: chain would lose its last member")
	// ErrBadChain means a chain or its marks break an invariant (Check).
	ErrBadChain = errors.New("core: chain breaks an invariant")
)
