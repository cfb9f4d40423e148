// Command secure publishes one event to an EventStream node over TLS: the
// server's certificate checked against a CA, optionally a client certificate
// (mutual TLS) and a bearer token (docs/security.md).
//
// Usage:
//
//	go run ./examples/secure -target events.example.com:9200 -ca ca.pem \
//	    [-cert client.pem -key client.key] [-token "$TOKEN"] [-server-name name]
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	eventstreamv1 "eventstream/sdk/clients/go/gen/eventstream/v1"
)

// bearerToken sends "authorization: Bearer <token>" with every call, and only
// over TLS (grpc refuses per-call credentials that require it on a plaintext
// connection).
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }

func main() {
	target := flag.String("target", "127.0.0.1:9200", "host:port of the gRPC API")
	caFile := flag.String("ca", "", "PEM file of the CA that signed the server's certificate (required)")
	certFile := flag.String("cert", "", "PEM client certificate, for mutual TLS")
	keyFile := flag.String("key", "", "PEM key of -cert")
	token := flag.String("token", "", "bearer token")
	serverName := flag.String("server-name", "", "name to check in the server's certificate (default: the target's host)")
	topic := flag.String("topic", "examples/go", "topic of the event")
	flag.Parse()

	config := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: *serverName, RootCAs: x509.NewCertPool()}
	ca, err := os.ReadFile(*caFile)
	if err != nil || !config.RootCAs.AppendCertsFromPEM(ca) {
		log.Fatalf("-ca %q: no PEM certificate (%v)", *caFile, err)
	}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("-cert/-key: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	options := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(config))}
	if *token != "" {
		options = append(options, grpc.WithPerRPCCredentials(bearerToken(*token)))
	}
	conn, err := grpc.NewClient(*target, options...)
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	response, err := eventstreamv1.NewPublishServiceClient(conn).Publish(ctx, &eventstreamv1.PublishRequest{
		Event: &eventstreamv1.Event{Topic: *topic, Payload: []byte("hello over TLS")},
	})
	if err != nil {
		log.Fatalf("publish: %v", err)
	}
	ack := response.GetAck()
	fmt.Printf("published %s at partition %d offset %d\n", ack.GetId(), ack.GetPartition(), ack.GetOffset())
}
