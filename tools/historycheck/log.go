package main

import "sync"

// logNode is one state of a partition's log: the ids appended so far, as a
// persistent list (a node shares its prefix with its parent). Nodes are
// hash-consed per partition (logTable.child), so two logs with the same
// contents are the same pointer: state equality is pointer equality.
type logNode struct {
	prev   *logNode
	jump   *logNode // a far ancestor, so ancestor() takes O(log n) steps
	id     int32
	length int64
	hash   uint64
}

// emptyLog is the initial state of every partition (its own jump target).
var emptyLog = func() *logNode {
	root := &logNode{}
	root.jump = root
	return root
}()

type childKey struct {
	prev *logNode
	id   int32
}

// logTable interns the log states of one partition. Porcupine checks
// partitions in parallel, one goroutine each; the lock keeps the
// visualization's replay (and any future sharing) safe.
type logTable struct {
	mu       sync.Mutex
	children map[childKey]*logNode
	byID     map[int32][]*logNode // every node whose last id is this id
}

func newLogTable() *logTable {
	return &logTable{children: map[childKey]*logNode{}, byID: map[int32][]*logNode{}}
}

// child is the log p followed by id (the same node on every call).
func (t *logTable) child(p *logNode, id int32) *logNode {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := childKey{p, id}
	if n, ok := t.children[key]; ok {
		return n
	}
	n := &logNode{prev: p, id: id, length: p.length + 1,
		hash: mix(p.hash ^ (uint64(uint32(id)) + 0x9e3779b97f4a7c15))}
	// Skew-binary jump pointers (Myers): ancestor() needs O(log n) hops.
	j := p.jump
	if p.length-j.length == j.length-j.jump.length {
		n.jump = j.jump
	} else {
		n.jump = p
	}
	t.children[key] = n
	t.byID[id] = append(t.byID[id], n)
	return n
}

// offsetOf is where id sits in log s, if it is there.
func (t *logTable) offsetOf(s *logNode, id int32) (int64, bool) {
	t.mu.Lock()
	candidates := t.byID[id]
	t.mu.Unlock()
	for _, n := range candidates {
		if n.length <= s.length && ancestor(s, n.length) == n {
			return n.length - 1, true
		}
	}
	return 0, false
}

// ancestor is the prefix of n that is depth entries long (depth <= n.length).
func ancestor(n *logNode, depth int64) *logNode {
	for n.length > depth {
		if n.jump.length >= depth {
			n = n.jump
		} else {
			n = n.prev
		}
	}
	return n
}

// chain interns the log made of ids (from an empty log).
func (t *logTable) chain(ids []int32) *logNode {
	n := emptyLog
	for _, id := range ids {
		n = t.child(n, id)
	}
	return n
}

// tail is the last count ids of n, oldest first.
func tail(n *logNode, count int) []int32 {
	if int64(count) > n.length {
		count = int(n.length)
	}
	ids := make([]int32, count)
	for i := count - 1; i >= 0; i-- {
		ids[i] = n.id
		n = n.prev
	}
	return ids
}

// mix is splitmix64's finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
