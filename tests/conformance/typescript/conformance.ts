// The conformance scenario over the generated TypeScript client (Connect for Node, gRPC).
//
// Usage: tsx conformance.ts TARGET PREFIX SCENARIO_JSON. Prints one JSON result
// (see tests/conformance/README.md).
import { readFileSync } from "node:fs";
import {
  Code,
  ConnectError,
  createClient,
  createGrpcTransport,
  detailTypes,
  errorInfo,
  type Event,
  PrioritySchema,
  PublishService,
  StartFrom,
  SubscribeService,
} from "../../../sdk/clients/typescript/src/index.js";

const SUBSCRIBE_DEADLINE_MS = 60_000;

interface EventSpec {
  id?: string;
  topic: string;
  key?: string;
  payload: string;
  priority?: string;
  headers?: Record<string, string>;
}

function priorityNumber(name: string | undefined): number {
  return PrioritySchema.values.find((value) => value.name === (name ?? "PRIORITY_UNSPECIFIED"))!.number;
}

function buildEvent(spec: EventSpec, prefix: string) {
  return {
    id: spec.id ? `${prefix}/${spec.id}` : "",
    topic: `${prefix}/${spec.topic}`,
    key: spec.key ?? "",
    payload: new Uint8Array(Buffer.from(spec.payload, "base64")),
    priority: priorityNumber(spec.priority),
    headers: spec.headers ?? {},
  };
}

// google.rpc.Code names, e.g. INVALID_ARGUMENT, from Connect's Code.InvalidArgument.
function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function describe(event: Event) {
  return {
    id: event.id,
    topic: event.topic,
    key: event.key,
    payload: Buffer.from(event.payload).toString("base64"),
    priority: event.priority as number,
    headers: event.headers,
    partition: event.partition,
    offset: Number(event.offset),
  };
}

const [target, prefix, scenarioPath] = process.argv.slice(2);
const scenario = JSON.parse(readFileSync(scenarioPath, "utf-8")) as {
  events: EventSpec[];
  invalid_event: EventSpec;
};
const transport = createGrpcTransport({ baseUrl: `http://${target}` });
const publisher = createClient(PublishService, transport);

const acks = [];
for (const spec of scenario.events) {
  const { ack } = await publisher.publish({ event: buildEvent(spec, prefix) });
  acks.push({ id: ack!.id, partition: ack!.partition, offset: Number(ack!.offset) });
}

const delivered: ReturnType<typeof describe>[] = [];
const stop = new AbortController();
const stream = createClient(SubscribeService, transport).subscribe(
  { patterns: [`${prefix}/#`], startFrom: StartFrom.EARLIEST },
  { signal: stop.signal, timeoutMs: SUBSCRIBE_DEADLINE_MS },
);
try {
  for await (const response of stream) {
    delivered.push(...response.events.map(describe));
    if (delivered.length >= acks.length) stop.abort();
  }
} catch (error) {
  if (!stop.signal.aborted) throw error;
}

let failure: Record<string, unknown> = { code: "OK" };
try {
  const invalid = scenario.invalid_event;
  await publisher.publish({
    event: { topic: invalid.topic, payload: new Uint8Array(Buffer.from(invalid.payload, "base64")) },
  });
} catch (error) {
  const connectError = ConnectError.from(error);
  const info = errorInfo(connectError);
  failure = {
    code: codeName(connectError.code),
    reason: info?.reason ?? "",
    field: info?.metadata.field ?? "",
    details: detailTypes(connectError),
  };
}
console.log(JSON.stringify({ language: "typescript", acks, delivered, error: failure }));
