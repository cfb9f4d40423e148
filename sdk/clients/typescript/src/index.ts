// The EventStream client for Node: the generated messages and services of
// eventstream.v1, the Connect pieces needed to call them over gRPC, and a
// reader for the rich error details.
export * from "./gen/eventstream/v1/cluster_pb.js";
export * from "./gen/eventstream/v1/common_pb.js";
export * from "./gen/eventstream/v1/publish_pb.js";
export * from "./gen/eventstream/v1/subscribe_pb.js";
export { detailTypes, errorInfo, type ErrorInfo } from "./errors.js";
export { create } from "@bufbuild/protobuf";
export { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
export { createGrpcTransport } from "@connectrpc/connect-node";
