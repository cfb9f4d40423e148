// Command conformance runs the conformance scenario over the generated Go client.
//
// Usage: conformance TARGET PREFIX SCENARIO_JSON. Prints one JSON result
// (see tests/conformance/README.md).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	eventstreamv1 "eventstream/sdk/clients/go/gen/eventstream/v1"
)

const subscribeDeadline = 60 * time.Second

type eventSpec struct {
	ID       string            `json:"id"`
	Topic    string            `json:"topic"`
	Key      string            `json:"key"`
	Payload  string            `json:"payload"`
	Priority string            `json:"priority"`
	Headers  map[string]string `json:"headers"`
}

type scenario struct {
	Events       []eventSpec `json:"events"`
	InvalidEvent eventSpec   `json:"invalid_event"`
}

type ack struct {
	ID        string `json:"id"`
	Partition uint32 `json:"partition"`
	Offset    uint64 `json:"offset"`
}

type delivered struct {
	ID        string            `json:"id"`
	Topic     string            `json:"topic"`
	Key       string            `json:"key"`
	Payload   string            `json:"payload"`
	Priority  int32             `json:"priority"`
	Headers   map[string]string `json:"headers"`
	Partition uint32            `json:"partition"`
	Offset    uint64            `json:"offset"`
}

type failure struct {
	Code    string   `json:"code"`
	Reason  string   `json:"reason"`
	Field   string   `json:"field"`
	Details []string `json:"details"`
}

func buildEvent(spec eventSpec, prefix string) *eventstreamv1.Event {
	payload, err := base64.StdEncoding.DecodeString(spec.Payload)
	if err != nil {
		log.Fatalf("scenario payload %q: %v", spec.Payload, err)
	}
	event := &eventstreamv1.Event{
		Topic:    prefix + "/" + spec.Topic,
		Key:      spec.Key,
		Payload:  payload,
		Priority: eventstreamv1.Priority(eventstreamv1.Priority_value[spec.Priority]),
		Headers:  spec.Headers,
	}
	if spec.ID != "" {
		event.Id = prefix + "/" + spec.ID
	}
	return event
}

// describeError reads the code and the google.rpc details of a failed call.
func describeError(err error) failure {
	st := status.Convert(err)
	// google.rpc.Code names the codes as every other language does, e.g. INVALID_ARGUMENT.
	result := failure{Code: code.Code(st.Code()).String(), Details: []string{}}
	for _, any := range st.Proto().GetDetails() {
		result.Details = append(result.Details, any.GetTypeUrl()[strings.LastIndex(any.GetTypeUrl(), "/")+1:])
	}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			result.Reason, result.Field = info.GetReason(), info.GetMetadata()["field"]
		}
	}
	return result
}

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: conformance TARGET PREFIX SCENARIO_JSON")
	}
	target, prefix := os.Args[1], os.Args[2]
	raw, err := os.ReadFile(os.Args[3])
	if err != nil {
		log.Fatal(err)
	}
	var spec scenario
	if err := json.Unmarshal(raw, &spec); err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), subscribeDeadline)
	defer cancel()

	publisher := eventstreamv1.NewPublishServiceClient(conn)
	acks := []ack{}
	for _, event := range spec.Events {
		response, err := publisher.Publish(ctx, &eventstreamv1.PublishRequest{Event: buildEvent(event, prefix)})
		if err != nil {
			log.Fatalf("publish: %v", err)
		}
		a := response.GetAck()
		acks = append(acks, ack{ID: a.GetId(), Partition: a.GetPartition(), Offset: a.GetOffset()})
	}

	subscribeCtx, stop := context.WithCancel(ctx)
	stream, err := eventstreamv1.NewSubscribeServiceClient(conn).Subscribe(subscribeCtx, &eventstreamv1.SubscribeRequest{
		Patterns:  []string{prefix + "/#"},
		StartFrom: eventstreamv1.StartFrom_START_FROM_EARLIEST,
	})
	if err != nil {
		log.Fatalf("subscribe: %v", err)
	}
	events := []delivered{}
	for len(events) < len(acks) {
		response, err := stream.Recv()
		if err != nil {
			log.Fatalf("subscribe: %v", err)
		}
		for _, e := range response.GetEvents() {
			headers := e.GetHeaders()
			if headers == nil {
				headers = map[string]string{}
			}
			events = append(events, delivered{
				ID: e.GetId(), Topic: e.GetTopic(), Key: e.GetKey(),
				Payload:  base64.StdEncoding.EncodeToString(e.GetPayload()),
				Priority: int32(e.GetPriority()), Headers: headers,
				Partition: e.GetPartition(), Offset: e.GetOffset(),
			})
		}
	}
	stop()

	invalid := buildEvent(spec.InvalidEvent, prefix)
	invalid.Topic = spec.InvalidEvent.Topic
	result := failure{Code: "OK", Details: []string{}}
	if _, err := publisher.Publish(ctx, &eventstreamv1.PublishRequest{Event: invalid}); err != nil {
		result = describeError(err)
	}
	out, err := json.Marshal(map[string]any{"language": "go", "acks": acks, "delivered": events, "error": result})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))
}
