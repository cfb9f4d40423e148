package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/anishathalye/porcupine"
)

// One line of a recorded history (JSON lines, one completed operation each):
//
//	{"client": 3, "op": "publish", "input": {"id": "e-1", "partition": 0},
//	 "output": {"status": "ok", "partition": 0, "offset": 17}, "call": 1000, "return": 2000}
//	{"client": 4, "op": "read", "input": {"partition": 0, "start": 0},
//	 "output": {"status": "ok", "ids": ["e-0", "e-1"], "complete": true}, "call": 1500, "return": 3000}
//
// "client" is any JSON value naming the caller; "call" and "return" are
// nanoseconds of one clock (a monotonic clock shared by every recorder).
// A publish's input partition is optional (known when the caller chose it);
// its output "status" is "ok" (with partition and offset), "unknown" (it may
// have taken effect) or "error" (refused: not stored). A read's status is "ok"
// (with ids and complete) or anything else for a failed read, which is skipped.
type record struct {
	Client json.RawMessage `json:"client"`
	Op     string          `json:"op"`
	Input  struct {
		ID        *string `json:"id"`
		Partition *int    `json:"partition"`
		Start     int64   `json:"start"`
	} `json:"input"`
	Output struct {
		Status    string   `json:"status"`
		Partition *int     `json:"partition"`
		Offset    *int64   `json:"offset"`
		IDs       []string `json:"ids"`
		Complete  bool     `json:"complete"`
		Error     string   `json:"error"`
	} `json:"output"`
	Call   *int64 `json:"call"`
	Return *int64 `json:"return"`
}

// counts describes a history for the report.
type counts struct {
	Operations  int `json:"operations"`
	Acked       int `json:"publishes_acknowledged"`
	Unknown     int `json:"publishes_unknown"`
	Refused     int `json:"publishes_refused"`
	Reads       int `json:"reads"`
	FailedReads int `json:"reads_failed"`
	// Unknown publishes whose id no other operation names: their partition
	// cannot be known, so each may have taken effect in any partition.
	Unplaced int `json:"publishes_unknown_unplaced"`
}

// history is a parsed history, ready for porcupine.
type history struct {
	ops        []porcupine.Operation
	partitions []int
	names      names
	counts     counts
	// problems are violations found before porcupine runs (an id in two partitions).
	problems []string
}

// inputError is a history that cannot be checked (exit code 2).
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badLine(line int, format string, args ...interface{}) error {
	return &inputError{fmt.Sprintf("line %d: %s", line, fmt.Sprintf(format, args...))}
}

func parseRecords(r io.Reader) ([]record, error) {
	var records []record
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 1<<20), 1<<30) // a read of a long log is one long line
	line := 0
	for scanner.Scan() {
		line++
		text := scanner.Bytes()
		if len(text) == 0 {
			continue
		}
		var rec record
		if err := json.Unmarshal(text, &rec); err != nil {
			return nil, badLine(line, "not a JSON object of the history format: %v", err)
		}
		if err := validate(&rec, line); err != nil {
			return nil, err
		}
		records = append(records, rec)
	}
	if err := scanner.Err(); err != nil {
		return nil, &inputError{fmt.Sprintf("reading the history: %v", err)}
	}
	return records, nil
}

func validate(rec *record, line int) error {
	if rec.Call == nil || rec.Return == nil {
		return badLine(line, "call and return timestamps are required")
	}
	if *rec.Return < *rec.Call {
		return badLine(line, "returns (%d) before its call (%d)", *rec.Return, *rec.Call)
	}
	if len(rec.Client) == 0 {
		return badLine(line, "client is required")
	}
	if p := rec.Input.Partition; p != nil && *p < 0 {
		return badLine(line, "input.partition is negative")
	}
	switch rec.Op {
	case "publish":
		if rec.Input.ID == nil || *rec.Input.ID == "" {
			return badLine(line, "a publish needs input.id")
		}
		switch rec.Output.Status {
		case "ok":
			if rec.Output.Partition == nil || rec.Output.Offset == nil {
				return badLine(line, "an acknowledged publish needs output.partition and output.offset")
			}
			if *rec.Output.Partition < 0 || *rec.Output.Offset < 0 {
				return badLine(line, "output.partition and output.offset cannot be negative")
			}
		case "unknown", "error":
		default:
			return badLine(line, "publish output.status %q is not ok, unknown or error", rec.Output.Status)
		}
	case "read":
		if rec.Input.Partition == nil {
			return badLine(line, "a read needs input.partition")
		}
		if rec.Input.Start < 0 {
			return badLine(line, "input.start is negative")
		}
	default:
		return badLine(line, "op %q is not publish or read", rec.Op)
	}
	return nil
}

// build turns records into porcupine operations, one partition per log.
func build(records []record) *history {
	h := &history{}
	intern := map[string]int32{}
	idOf := func(name string) int32 {
		id, ok := intern[name]
		if !ok {
			id = int32(len(h.names))
			intern[name] = id
			h.names = append(h.names, name)
		}
		return id
	}
	clients := map[string]int{}
	clientOf := func(raw json.RawMessage) int {
		key := string(raw)
		if _, ok := clients[key]; !ok {
			clients[key] = len(clients)
		}
		return clients[key]
	}

	// Where each id lives, from every operation that says; two answers are a violation.
	home := map[int32]int{}
	// When and where each id was first seen in the log: the earliest return
	// of a read showing it or of an acknowledgement of it.
	firstSeen := map[int32]sighting{}
	see := func(id int32, at, offset int64) {
		if before, ok := firstSeen[id]; !ok || at < before.at {
			firstSeen[id] = sighting{at, offset}
		}
	}
	seenPartitions := map[int]bool{}
	place := func(id int32, partition int, what string) {
		seenPartitions[partition] = true
		if before, ok := home[id]; ok && before != partition {
			h.problems = append(h.problems, fmt.Sprintf(
				"event %q is in partition %d and in partition %d (%s)", h.names[id], before, partition, what))
			return
		}
		home[id] = partition
	}
	horizon := int64(0)
	for i := range records {
		rec := &records[i]
		if *rec.Return > horizon {
			horizon = *rec.Return
		}
		switch rec.Op {
		case "publish":
			id := idOf(*rec.Input.ID)
			if rec.Input.Partition != nil {
				place(id, *rec.Input.Partition, "as published")
			}
			if rec.Output.Status == "ok" {
				place(id, *rec.Output.Partition, "as acknowledged")
				see(id, *rec.Return, *rec.Output.Offset)
			}
		case "read":
			seenPartitions[*rec.Input.Partition] = true
			if rec.Output.Status == "ok" {
				for i, name := range rec.Output.IDs {
					place(idOf(name), *rec.Input.Partition, "as read")
					see(intern[name], *rec.Return, rec.Input.Start+int64(i))
				}
			}
		}
	}
	h.partitions = sortedKeys(seenPartitions)
	covered := fullyNamed(records)
	tables := map[int]*logTable{}
	for _, p := range h.partitions {
		tables[p] = newLogTable()
	}

	add := func(rec *record, in opInput, out opOutput, ret int64) {
		in.table = tables[in.partition]
		h.ops = append(h.ops, porcupine.Operation{ClientId: clientOf(rec.Client), Input: in,
			Output: out, Call: *rec.Call, Return: ret})
	}
	for i := range records {
		rec := &records[i]
		if rec.Op == "read" {
			if rec.Output.Status != "ok" {
				h.counts.FailedReads++
				continue
			}
			h.counts.Reads++
			in := opInput{kind: opRead, partition: *rec.Input.Partition, start: rec.Input.Start}
			out := opOutput{complete: rec.Output.Complete, ids: make([]int32, len(rec.Output.IDs))}
			for j, name := range rec.Output.IDs {
				out.ids[j] = intern[name]
			}
			if in.start == 0 {
				out.chain = tables[in.partition].chain(out.ids)
			}
			add(rec, in, out, *rec.Return)
			continue
		}
		id := intern[*rec.Input.ID]
		in := opInput{kind: opPublish, id: id}
		out := opOutput{detail: rec.Output.Error}
		partition, placed := home[id]
		ret := *rec.Return
		switch rec.Output.Status {
		case "ok":
			h.counts.Acked++
			out.outcome, out.offset = outcomeOK, *rec.Output.Offset
			partition, placed = *rec.Output.Partition, true
		case "unknown":
			h.counts.Unknown++
			out.outcome = outcomeUnknown
			out.offset = -1
			ret = horizon + 1 // unseen: it may take effect at any time after its call
			if seen, ok := firstSeen[id]; ok {
				ret, out.offset = bounded(*rec.Call, seen)
			}
		default:
			h.counts.Refused++
			out.outcome = outcomeError
		}
		if rec.Input.Partition != nil {
			partition, placed = *rec.Input.Partition, true
		}
		_, observed := firstSeen[id]
		switch {
		case out.outcome == outcomeUnknown && !observed && !placed:
			// Nothing says where it went: it may have filled a slot in any log.
			h.counts.Unplaced++
			for _, p := range h.partitions {
				if !covered[p] {
					in.partition = p
					add(rec, in, out, ret)
				}
			}
		case out.outcome == outcomeUnknown && !observed && covered[partition]:
			// Every offset of its log up to the highest named is named by an
			// acknowledgement or a read: it took no slot there, so it either
			// never took effect or took effect after everything; leaving it
			// out is equivalent, and spares porcupine an operation concurrent
			// with all that follows (an illegal history would otherwise make
			// it try every subset of such publishes).
		case placed:
			in.partition = partition
			add(rec, in, out, ret)
		default:
			// Refused and named nowhere else: it has no effect on any log.
		}
	}
	h.counts.Operations = len(records)
	return h
}

// fullyNamed tells, per partition, whether every offset from 0 to the highest
// one any operation names is named by one: an acknowledgement's offset or a
// successful read's span. An unknown publish whose id nobody saw cannot have
// taken a named offset (a read covering it would show its id, an
// acknowledgement names another id there and offsets are never reused), so
// in a covered log it could only have taken effect after everything named.
func fullyNamed(records []record) map[int]bool {
	type span struct{ from, to int64 } // [from, to)
	spans := map[int][]span{}
	highest := map[int]int64{}
	note := func(p int, offset int64) {
		if h, ok := highest[p]; !ok || offset > h {
			highest[p] = offset
		}
	}
	for i := range records {
		rec := &records[i]
		switch {
		case rec.Op == "publish" && rec.Output.Status == "ok":
			p, offset := *rec.Output.Partition, *rec.Output.Offset
			spans[p] = append(spans[p], span{offset, offset + 1})
			note(p, offset)
		case rec.Op == "read" && rec.Output.Status == "ok":
			p, from := *rec.Input.Partition, rec.Input.Start
			to := from + int64(len(rec.Output.IDs))
			spans[p] = append(spans[p], span{from, to})
			note(p, to-1)
		}
	}
	covered := map[int]bool{}
	for p, h := range highest {
		list := spans[p]
		sort.Slice(list, func(i, j int) bool { return list[i].from < list[j].from })
		reach := int64(0) // offsets below reach are covered
		for _, s := range list {
			if s.from > reach {
				break
			}
			if s.to > reach {
				reach = s.to
			}
		}
		covered[p] = reach > h
	}
	return covered
}

// sighting is where an id was first seen in the log, and when.
type sighting struct{ at, offset int64 }

// bounded is the interval end and the offset of an unknown publish whose id
// was seen in the log.
//
// From the sighting on, the id is in the log, at that offset: the publish
// either stored it there before then, or is a no-op from then on, which can
// be placed anywhere after its call. So returning at max(call, seen.at) and
// storing only at seen.offset lose no linearization (and if the id is seen
// at two offsets, no linearization exists either way), while porcupine's
// search stays small: an unbounded operation that may append anywhere is
// concurrent with everything after it.
func bounded(call int64, seen sighting) (int64, int64) {
	if seen.at < call {
		return call, seen.offset
	}
	return seen.at, seen.offset
}
