package eventstream.examples;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
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
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;

/**
 * Connects to an EventStream node, publishes one event, reads it back through a
 * subscription and shows how errors surface.
 *
 * <p>Usage: {@code java -cp target/classes:$(cat target/classpath.txt) eventstream.examples.Quickstart [host:port]}
 */
public final class Quickstart {
  private Quickstart() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "127.0.0.1:9200";
    ManagedChannel channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    try {
      PublishServiceGrpc.PublishServiceBlockingStub publisher =
          PublishServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
      PublishAck ack = publisher.publish(PublishRequest.newBuilder()
          .setEvent(Event.newBuilder()
              .setTopic("examples/java")
              .setKey("device-1")
              .setPayload(ByteString.copyFromUtf8("hello"))
              .setPriority(Priority.PRIORITY_HIGH)
              .putHeaders("content-type", "text/plain"))
          .build()).getAck();
      System.out.printf("published %s at partition %d offset %d%n", ack.getId(), ack.getPartition(), ack.getOffset());

      // A subscription runs until its context is cancelled.
      try (Context.CancellableContext subscription = Context.current().withCancellation()) {
        subscription.run(() -> {
          Iterator<SubscribeResponse> responses = SubscribeServiceGrpc.newBlockingStub(channel)
              .withDeadlineAfter(10, TimeUnit.SECONDS)
              .subscribe(SubscribeRequest.newBuilder()
                  .addPatterns("examples/#")
                  .setStartFrom(StartFrom.START_FROM_EARLIEST)
                  .build());
          for (boolean found = false; !found && responses.hasNext(); ) {
            for (Event event : responses.next().getEventsList()) {
              System.out.printf("received %s on %s: %s%n", event.getId(), event.getTopic(), event.getPayload().toStringUtf8());
              found |= event.getId().equals(ack.getId());
            }
          }
        });
      }

      // An empty topic is refused with INVALID_ARGUMENT and rich details.
      try {
        publisher.publish(PublishRequest.newBuilder().setEvent(Event.getDefaultInstance()).build());
      } catch (StatusRuntimeException error) {
        System.out.printf("empty topic: %s: %s%n", error.getStatus().getCode(), error.getStatus().getDescription());
        if (error.getStatus().getCode() == Status.Code.INVALID_ARGUMENT) {
          printErrorInfo(error);
        }
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static void printErrorInfo(StatusRuntimeException error) throws InvalidProtocolBufferException {
    com.google.rpc.Status status = StatusProto.fromThrowable(error);
    if (status == null) {
      return;
    }
    for (Any detail : status.getDetailsList()) {
      if (detail.is(ErrorInfo.class)) {
        ErrorInfo info = detail.unpack(ErrorInfo.class);
        System.out.printf("reason %s, field %s%n", info.getReason(), info.getMetadataOrDefault("field", ""));
      }
    }
  }
}
