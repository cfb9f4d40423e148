// Publishes one event to an EventStream node over TLS: the server's
// certificate checked against a CA, optionally a client certificate (mutual
// TLS) and a bearer token (docs/security.md).
//
// Usage: tsx examples/secure.ts https://events.example.com:9200 --ca ca.pem
//          [--cert client.pem --key client.key] [--token "$TOKEN"] [--server-name name]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Interceptor } from "@connectrpc/connect";
import { createClient, createGrpcTransport, PublishService } from "../src/index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ca: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    token: { type: "string" },
    "server-name": { type: "string" },
    topic: { type: "string", default: "examples/typescript" },
  },
});
if (!values.ca) throw new Error("--ca: the CA that signed the server's certificate is required");

// The token goes in the "authorization" header of every call.
const interceptors: Interceptor[] = [];
const token = values.token;
if (token) {
  interceptors.push((next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  });
}

const transport = createGrpcTransport({
  baseUrl: positionals[0] ?? "https://127.0.0.1:9200",
  // Node's TLS options: trust the CA, present the client certificate if any.
  nodeOptions: {
    ca: readFileSync(values.ca),
    cert: values.cert ? readFileSync(values.cert) : undefined,
    key: values.key ? readFileSync(values.key) : undefined,
    servername: values["server-name"],
  },
  interceptors,
});
const { ack } = await createClient(PublishService, transport).publish(
  { event: { topic: values.topic, payload: new TextEncoder().encode("hello over TLS") } },
  { timeoutMs: 10_000 },
);
console.log(`published ${ack?.id} at partition ${ack?.partition} offset ${ack?.offset}`);
