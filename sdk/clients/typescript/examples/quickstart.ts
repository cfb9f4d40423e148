// Connects to an EventStream node, publishes one event, reads it back through
// a subscription and shows how errors surface.
//
// Usage: npm run example -- [http://127.0.0.1:9200]
import {
  Code,
  ConnectError,
  createClient,
  createGrpcTransport,
  errorInfo,
  Priority,
  PublishService,
  StartFrom,
  SubscribeService,
} from "../src/index.js";

const transport = createGrpcTransport({ baseUrl: process.argv[2] ?? "http://127.0.0.1:9200" });
const publisher = createClient(PublishService, transport);
const subscriber = createClient(SubscribeService, transport);

const { ack } = await publisher.publish({
  event: {
    topic: "examples/typescript",
    key: "device-1",
    payload: new TextEncoder().encode("hello"),
    priority: Priority.HIGH,
    headers: { "content-type": "text/plain" },
  },
});
console.log(`published ${ack?.id} at partition ${ack?.partition} offset ${ack?.offset}`);

// A subscription runs until it is aborted.
const stop = new AbortController();
const stream = subscriber.subscribe(
  { patterns: ["examples/#"], startFrom: StartFrom.EARLIEST },
  { signal: stop.signal, timeoutMs: 10_000 },
);
try {
  for await (const response of stream) {
    for (const event of response.events) {
      console.log(`received ${event.id} on ${event.topic}: ${new TextDecoder().decode(event.payload)}`);
      if (event.id === ack?.id) stop.abort();
    }
  }
} catch (error) {
  if (!stop.signal.aborted) throw error;
}

// An empty topic is refused with INVALID_ARGUMENT and rich details.
try {
  await publisher.publish({ event: { topic: "" } });
} catch (error) {
  const failure = ConnectError.from(error);
  console.log(`empty topic: ${Code[failure.code]}: ${failure.rawMessage}`);
  if (failure.code === Code.InvalidArgument) {
    const info = errorInfo(failure);
    console.log(`reason ${info?.reason}, field ${info?.metadata.field}`);
  }
}
