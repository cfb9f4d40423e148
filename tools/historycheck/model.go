package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The sequential specification: every partition is an append-only log of
// event ids.
//
//   - publish(id) -> (partition, offset): appends id at the end, unless id is
//     already in the log, in which case it answers id's first offset and
//     appends nothing (a retried publish is not stored twice).
//   - publish(id) -> unknown (timeout, UNAVAILABLE, a broken connection): it
//     may have taken effect or not. Its return time is pushed past every
//     other operation, so porcupine may place it anywhere after its call
//     (it took effect then) or after everything (it never did).
//   - publish(id) -> error (the server said it did not store it): no effect.
//   - read(partition, start) -> ids: entries start, start+1, ... of the log
//     in order. A complete read saw the end of the log: the ids are exactly
//     the log from start at one instant between call and return. A read that
//     is not complete saw a prefix: the log held at least those entries.

type opKind int

const (
	opPublish opKind = iota
	opRead
)

type outcome int

const (
	outcomeOK outcome = iota
	outcomeUnknown
	outcomeError
)

type opInput struct {
	kind      opKind
	table     *logTable // the partition's intern table
	partition int
	id        int32 // publish
	start     int64 // read
}

type opOutput struct {
	outcome  outcome
	offset   int64    // publish: ok, or unknown whose id was seen there (else -1)
	ids      []int32  // read
	complete bool     // read
	chain    *logNode // read from offset 0: the log it saw, interned
	detail   string   // an unknown or refused publish: the error text
}

// names maps interned ids back to the event ids of the history.
type names []string

func (n names) of(id int32) string { return n[id] }

func newModel(partitions []int, ids names) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			return partitionByKey(history, partitions)
		},
		Init: func() interface{} { return emptyLog },
		Step: step,
		Hash: func(state interface{}) uint64 { return state.(*logNode).hash },
		DescribeOperation: func(input, output interface{}) string {
			return describeOperation(input.(opInput), output.(opOutput), ids)
		},
		DescribeState: func(state interface{}) string {
			return describeState(state.(*logNode), ids)
		},
	}
}

// partitionByKey groups operations by their partition, in the order of partitions.
func partitionByKey(history []porcupine.Operation, partitions []int) [][]porcupine.Operation {
	index := map[int]int{}
	for i, p := range partitions {
		index[p] = i
	}
	groups := make([][]porcupine.Operation, len(partitions))
	for _, op := range history {
		i := index[op.Input.(opInput).partition]
		groups[i] = append(groups[i], op)
	}
	return groups
}

func step(state, input, output interface{}) (bool, interface{}) {
	log := state.(*logNode)
	in, out := input.(opInput), output.(opOutput)
	if in.kind == opRead {
		return readMatches(log, in, out), log
	}
	at, present := in.table.offsetOf(log, in.id)
	switch out.outcome {
	case outcomeOK:
		if present {
			return at == out.offset, log
		}
		if out.offset != log.length {
			return false, log
		}
		return true, in.table.child(log, in.id)
	case outcomeUnknown:
		if present {
			return true, log
		}
		if out.offset >= 0 && out.offset != log.length {
			return false, log // its id is known to sit at out.offset
		}
		return true, in.table.child(log, in.id)
	default: // refused: nothing stored by this call
		return true, log
	}
}

func readMatches(log *logNode, in opInput, out opOutput) bool {
	end := in.start + int64(len(out.ids))
	if log.length < end || (out.complete && log.length != end) {
		return false
	}
	seen := ancestor(log, end)
	if out.chain != nil {
		return seen == out.chain
	}
	for i := len(out.ids) - 1; i >= 0; i-- {
		if seen.id != out.ids[i] {
			return false
		}
		seen = seen.prev
	}
	return true
}

const shownIDs = 6

func describeIDs(ids []int32, names names, total int64) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, names.of(id))
	}
	text := strings.Join(parts, " ")
	if total > int64(len(ids)) {
		text = "… " + text
	}
	return text
}

func describeOperation(in opInput, out opOutput, names names) string {
	if in.kind == opRead {
		shown := out.ids
		if len(shown) > shownIDs {
			shown = shown[len(shown)-shownIDs:]
		}
		kind := "prefix"
		if out.complete {
			kind = "to end"
		}
		return fmt.Sprintf("read(p%d from %d, %s) -> %d ids [%s]", in.partition, in.start, kind,
			len(out.ids), describeIDs(shown, names, int64(len(out.ids))))
	}
	call := fmt.Sprintf("publish(%s)", names.of(in.id))
	switch out.outcome {
	case outcomeOK:
		return fmt.Sprintf("%s -> p%d@%d", call, in.partition, out.offset)
	case outcomeUnknown:
		if out.offset >= 0 {
			return fmt.Sprintf("%s -> unknown (%s), seen at p%d@%d", call, out.detail, in.partition, out.offset)
		}
		return fmt.Sprintf("%s -> unknown (%s)", call, out.detail)
	default:
		return fmt.Sprintf("%s -> refused (%s)", call, out.detail)
	}
}

func describeState(log *logNode, names names) string {
	return fmt.Sprintf("%d entries [%s]", log.length,
		describeIDs(tail(log, shownIDs), names, log.length))
}

// sortedKeys returns the keys of a set of partitions in order.
func sortedKeys(set map[int]bool) []int {
	keys := make([]int, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
