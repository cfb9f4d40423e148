// google.rpc.ErrorInfo from a ConnectError's details. The server sends it in
// grpc-status-details-bin; Connect keeps details it has no schema for as
// bytes, and @bufbuild/protobuf ships no google.rpc types, so the three
// fields are read here with the wire reader.
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { ConnectError } from "@connectrpc/connect";

/** The fields of google.rpc.ErrorInfo. */
export interface ErrorInfo {
  /** Stable machine-readable reason, e.g. "TOPIC_EMPTY". */
  reason: string;
  domain: string;
  /** "field" names the request field at fault, e.g. "event.topic". */
  metadata: Record<string, string>;
}

/** The type names of an error's details, e.g. ["google.rpc.ErrorInfo", "google.rpc.BadRequest"]. */
export function detailTypes(error: ConnectError): string[] {
  return error.details.map((detail) => ("type" in detail ? detail.type : detail.desc.typeName));
}

/** The error's google.rpc.ErrorInfo, or undefined when it carries none. */
export function errorInfo(error: ConnectError): ErrorInfo | undefined {
  for (const detail of error.details) {
    if ("type" in detail && detail.type === "google.rpc.ErrorInfo") {
      return decodeErrorInfo(detail.value);
    }
  }
  return undefined;
}

function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const info: ErrorInfo = { reason: "", domain: "", metadata: {} };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      info.reason = reader.string();
    } else if (field === 2 && wireType === WireType.LengthDelimited) {
      info.domain = reader.string();
    } else if (field === 3 && wireType === WireType.LengthDelimited) {
      const [key, value] = decodeMapEntry(reader.bytes());
      info.metadata[key] = value;
    } else {
      reader.skip(wireType);
    }
  }
  return info;
}

function decodeMapEntry(bytes: Uint8Array): [string, string] {
  const reader = new BinaryReader(bytes);
  let key = "";
  let value = "";
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      key = reader.string();
    } else if (field === 2 && wireType === WireType.LengthDelimited) {
      value = reader.string();
    } else {
      reader.skip(wireType);
    }
  }
  return [key, value];
}
