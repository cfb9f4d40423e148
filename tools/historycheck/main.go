// Command historycheck checks a recorded history of publishes and reads for
// linearizability against a per-partition append-only log, with porcupine.
//
//	historycheck [-timeout 60s] [-html FILE] [-json] HISTORY.jsonl
//
// Exit codes: 0 the history is linearizable; 1 it is not (porcupine's
// visualization of the longest linearizations is written to -html, by
// default the history file's path + ".html"); 2 it could not be checked
// (bad input, or no verdict within -timeout).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

// report is what -json prints.
type report struct {
	Result string `json:"result"` // "ok", "violation" or "error"
	counts
	Partitions []int    `json:"partitions"`
	Failed     []int    `json:"failed_partitions"`
	Problems   []string `json:"problems"`
	HTML       string   `json:"html,omitempty"`
	Error      string   `json:"error,omitempty"`
	Seconds    float64  `json:"seconds"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("historycheck", flag.ContinueOnError)
	flags.SetOutput(stderr)
	timeout := flags.Duration("timeout", 60*time.Second, "give up (exit 2) after this long; 0: never")
	htmlPath := flags.String("html", "", "where to write the visualization of a violation (default: the history's path + .html)")
	asJSON := flags.Bool("json", false, "print the verdict as one JSON object")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: historycheck [-timeout 60s] [-html FILE] [-json] HISTORY.jsonl")
		return 2
	}
	path := flags.Arg(0)
	if *htmlPath == "" {
		*htmlPath = path + ".html"
	}
	started := time.Now()
	rep, code := check(path, *htmlPath, *timeout)
	rep.Seconds = time.Since(started).Seconds()
	if *asJSON {
		encoded, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(encoded))
	} else {
		printReport(stdout, rep)
	}
	return code
}

func check(path, htmlPath string, timeout time.Duration) (report, int) {
	rep := report{Failed: []int{}, Problems: []string{}, Partitions: []int{}}
	fail := func(err error) (report, int) {
		rep.Result, rep.Error = "error", err.Error()
		return rep, 2
	}
	file, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer file.Close()
	records, err := parseRecords(file)
	if err != nil {
		return fail(err)
	}
	h := build(records)
	rep.counts, rep.Partitions = h.counts, h.partitions
	rep.Problems = append(rep.Problems, h.problems...)

	model := newModel(h.partitions, h.names)
	result, info := porcupine.CheckOperationsVerbose(model, h.ops, timeout)
	if result == porcupine.Unknown {
		return fail(fmt.Errorf("no verdict within %v", timeout))
	}
	if result == porcupine.Illegal {
		rep.Failed = failedPartitions(h, info)
		rep.Problems = append(rep.Problems, fmt.Sprintf(
			"partitions %v are not linearizable as append-only logs", rep.Failed))
	}
	if len(rep.Problems) == 0 {
		rep.Result = "ok"
		return rep, 0
	}
	rep.Result = "violation"
	if err := porcupine.VisualizePath(model, info, htmlPath); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("(the visualization could not be written: %v)", err))
	} else {
		rep.HTML = htmlPath
	}
	return rep, 1
}

// failedPartitions names the partitions none of whose partial linearizations covers every operation.
func failedPartitions(h *history, info porcupine.LinearizationInfo) []int {
	groups := partitionByKey(h.ops, h.partitions)
	failed := []int{}
	for i, partials := range info.PartialLinearizations() {
		whole := false
		for _, partial := range partials {
			whole = whole || len(partial) == len(groups[i])
		}
		if !whole {
			failed = append(failed, h.partitions[i])
		}
	}
	return failed
}

func printReport(w io.Writer, rep report) {
	switch rep.Result {
	case "error":
		fmt.Fprintf(w, "error: %s\n", rep.Error)
		return
	case "ok":
		fmt.Fprint(w, "ok: ")
	default:
		fmt.Fprint(w, "violation: ")
	}
	fmt.Fprintf(w, "%d operations (publishes: %d acknowledged, %d unknown, %d refused; reads: %d, %d failed) "+
		"in %d partitions, %.2f s\n", rep.Operations, rep.Acked, rep.Unknown, rep.Refused, rep.Reads,
		rep.FailedReads, len(rep.Partitions), rep.Seconds)
	for _, problem := range rep.Problems {
		fmt.Fprintf(w, "  %s\n", problem)
	}
	if rep.HTML != "" {
		fmt.Fprintf(w, "  visualization: %s\n", rep.HTML)
	}
}
