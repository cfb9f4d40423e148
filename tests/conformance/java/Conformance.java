// The conformance scenario over the generated Java client (grpc-java, blocking stubs).
//
// Usage: java -cp <sdk/clients/java classes and classpath> Conformance.java TARGET PREFIX SCENARIO_JSON
// Prints one JSON result (see tests/conformance/README.md). JSON is read and
// written with Gson, which grpc-java (grpc-core) brings along.

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import eventstream.v1.Event;
import eventstream.v1.Priority;
import eventstream.v1.PublishAck;
import eventstream.v1.PublishRequest;
import eventstream.v1.PublishServiceGrpc;
import eventstream.v1.StartFrom;
import eventstream.v1.SubscribeRequest;
import eventstream.v1.SubscribeResponse;
import eventstream.v1.SubscribeServiceGrpc;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

public final class Conformance {
  private static final long SUBSCRIBE_DEADLINE_SECONDS = 60;

  private static String text(JsonObject spec, String name) {
    JsonElement value = spec.get(name);
    return value == null ? "" : value.getAsString();
  }

  private static Event buildEvent(JsonObject spec, String prefix) {
    Event.Builder event = Event.newBuilder()
        .setTopic(prefix + "/" + text(spec, "topic"))
        .setKey(text(spec, "key"))
        .setPayload(ByteString.copyFrom(Base64.getDecoder().decode(text(spec, "payload"))))
        .setPriority(Priority.valueOf(spec.has("priority") ? text(spec, "priority") : "PRIORITY_UNSPECIFIED"));
    if (!text(spec, "id").isEmpty()) {
      event.setId(prefix + "/" + text(spec, "id"));
    }
    if (spec.has("headers")) {
      spec.getAsJsonObject("headers").entrySet()
          .forEach(header -> event.putHeaders(header.getKey(), header.getValue().getAsString()));
    }
    return event.build();
  }

  private static Map<String, Object> describe(Event event) {
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("id", event.getId());
    result.put("topic", event.getTopic());
    result.put("key", event.getKey());
    result.put("payload", Base64.getEncoder().encodeToString(event.getPayload().toByteArray()));
    result.put("priority", event.getPriorityValue());
    result.put("headers", event.getHeadersMap());
    result.put("partition", Integer.toUnsignedLong(event.getPartition()));
    result.put("offset", event.getOffset());
    return result;
  }

  private static Map<String, Object> describeError(StatusRuntimeException error) throws Exception {
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("code", error.getStatus().getCode().name());
    result.put("reason", "");
    result.put("field", "");
    List<String> details = new ArrayList<>();
    com.google.rpc.Status status = StatusProto.fromThrowable(error);
    for (Any detail : status == null ? List.<Any>of() : status.getDetailsList()) {
      details.add(detail.getTypeUrl().substring(detail.getTypeUrl().lastIndexOf('/') + 1));
      if (detail.is(ErrorInfo.class)) {
        ErrorInfo info = detail.unpack(ErrorInfo.class);
        result.put("reason", info.getReason());
        result.put("field", info.getMetadataOrDefault("field", ""));
      }
    }
    result.put("details", details);
    return result;
  }

  public static void main(String[] args) throws Exception {
    String target = args[0];
    String prefix = args[1];
    JsonObject scenario = JsonParser.parseString(Files.readString(Path.of(args[2]), StandardCharsets.UTF_8))
        .getAsJsonObject();
    ManagedChannel channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    Map<String, Object> output = new LinkedHashMap<>();
    output.put("language", "java");
    try {
      PublishServiceGrpc.PublishServiceBlockingStub publisher = PublishServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(SUBSCRIBE_DEADLINE_SECONDS, TimeUnit.SECONDS);
      List<Map<String, Object>> acks = new ArrayList<>();
      for (JsonElement spec : scenario.getAsJsonArray("events")) {
        PublishAck ack = publisher.publish(PublishRequest.newBuilder()
            .setEvent(buildEvent(spec.getAsJsonObject(), prefix)).build()).getAck();
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("id", ack.getId());
        entry.put("partition", Integer.toUnsignedLong(ack.getPartition()));
        entry.put("offset", ack.getOffset());
        acks.add(entry);
      }
      output.put("acks", acks);

      List<Map<String, Object>> delivered = new ArrayList<>();
      try (Context.CancellableContext subscription = Context.current().withCancellation()) {
        subscription.run(() -> {
          Iterator<SubscribeResponse> responses = SubscribeServiceGrpc.newBlockingStub(channel)
              .withDeadlineAfter(SUBSCRIBE_DEADLINE_SECONDS, TimeUnit.SECONDS)
              .subscribe(SubscribeRequest.newBuilder()
                  .addPatterns(prefix + "/#")
                  .setStartFrom(StartFrom.START_FROM_EARLIEST)
                  .build());
          while (delivered.size() < acks.size()) {
            responses.next().getEventsList().forEach(event -> delivered.add(describe(event)));
          }
        });
      }
      output.put("delivered", delivered);

      JsonObject invalid = scenario.getAsJsonObject("invalid_event");
      Map<String, Object> failure = new LinkedHashMap<>();
      failure.put("code", "OK");
      try {
        publisher.publish(PublishRequest.newBuilder().setEvent(Event.newBuilder()
            .setTopic(text(invalid, "topic"))
            .setPayload(ByteString.copyFrom(Base64.getDecoder().decode(text(invalid, "payload"))))).build());
      } catch (StatusRuntimeException error) {
        failure = describeError(error);
      }
      output.put("error", failure);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    System.out.println(new Gson().toJson(output));
  }
}
