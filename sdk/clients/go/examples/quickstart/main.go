// Command quickstart connects to an EventStream node, publishes one event,
// reads it back through a subscription and shows how errors surface.
//
// Usage: go run ./examples/quickstart [-target 127.0.0.1:9200]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	eventstreamv1 "eventstream/sdk/clients/go/gen/eventstream/v1"
)

func main() {
	target := flag.String("target", "127.0.0.1:9200", "host:port of the gRPC API")
	flag.Parse()

	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	publisher := eventstreamv1.NewPublishServiceClient(conn)
	response, err := publisher.Publish(ctx, &eventstreamv1.PublishRequest{Event: &eventstreamv1.Event{
		Topic:    "examples/go",
		Key:      "device-1",
		Payload:  []byte("hello"),
		Priority: eventstreamv1.Priority_PRIORITY_HIGH,
		Headers:  map[string]string{"content-type": "text/plain"},
	}})
	if err != nil {
		log.Fatalf("publish: %v", err)
	}
	ack := response.GetAck()
	fmt.Printf("published %s at partition %d offset %d\n", ack.GetId(), ack.GetPartition(), ack.GetOffset())

	subscriber := eventstreamv1.NewSubscribeServiceClient(conn)
	stream, err := subscriber.Subscribe(ctx, &eventstreamv1.SubscribeRequest{
		Patterns:  []string{"examples/#"},
		StartFrom: eventstreamv1.StartFrom_START_FROM_EARLIEST,
	})
	if err != nil {
		log.Fatalf("subscribe: %v", err)
	}
	for found := false; !found; {
		batch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			log.Fatalf("subscribe: %v", err)
		}
		for _, event := range batch.GetEvents() {
			fmt.Printf("received %s on %s: %s\n", event.GetId(), event.GetTopic(), event.GetPayload())
			found = event.GetId() == ack.GetId()
		}
	}

	// An empty topic is refused with INVALID_ARGUMENT and rich details.
	_, err = publisher.Publish(ctx, &eventstreamv1.PublishRequest{Event: &eventstreamv1.Event{}})
	failure := status.Convert(err)
	fmt.Printf("empty topic: %s: %s\n", failure.Code(), failure.Message())
	if failure.Code() == codes.InvalidArgument {
		for _, detail := range failure.Details() {
			if info, ok := detail.(*errdetails.ErrorInfo); ok {
				fmt.Printf("reason %s, field %s\n", info.GetReason(), info.GetMetadata()["field"])
			}
		}
	}
}
