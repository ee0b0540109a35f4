package disk

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// opSet is a set of Ops, a bit per Op.
type opSet uint32

// newOpSet returns the set of ops, or of every Op when ops is empty.
func newOpSet(ops []Op) opSet {
	if len(ops) == 0 {
		return 1<<numOps - 1
	}
	var s opSet
	for _, op := range ops {
		if op >= numOps {
			panic(fmt.Sprintf("disk: unknown %v", op))
		}
		s |= 1 << op
	}
	return s
}

func (s opSet) has(op Op) bool { return s&(1<<op) != 0 }

// FailAfter returns an Injector that lets the first n calls of ops (every Op when none are
// given) succeed and fails every later one with ErrInjected: a disk that dies. Other Ops
// always succeed. It is safe for concurrent use.
func FailAfter(n int, ops ...Op) Injector {
	if n < 0 {
		panic(fmt.Sprintf("disk: FailAfter(%d): negative count", n))
	}
	return &failAfter{okLeft: n, ops: newOpSet(ops)}
}

type failAfter struct {
	ops opSet

	mu     sync.Mutex
	okLeft int // calls of ops still to succeed
}

func (f *failAfter) MaybeError(op Op, _ string) error {
	if !f.ops.has(op) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.okLeft > 0 {
		f.okLeft--
		return nil
	}
	return ErrInjected
}

// RandomErrors returns an Injector that fails each call of ops (every Op when none are
// given) with ErrInjected with probability prob, drawing from rng (math/rand/v2) once per
// call of ops and never otherwise, so the same calls and seed fail the same way. It is safe
// for concurrent use if nothing else draws from rng meanwhile.
func RandomErrors(rng *rand.Rand, prob float64, ops ...Op) Injector {
	if prob < 0 || prob > 1 {
		panic(fmt.Sprintf("disk: RandomErrors: probability %v outside [0, 1]", prob))
	}
	return &randomErrors{rng: rng, prob: prob, ops: newOpSet(ops)}
}

type randomErrors struct {
	prob float64
	ops  opSet

	mu  sync.Mutex
	rng *rand.Rand
}

func (r *randomErrors) MaybeError(op Op, _ string) error {
	if !r.ops.has(op) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rng.Float64() < r.prob {
		return ErrInjected
	}
	return nil
}
