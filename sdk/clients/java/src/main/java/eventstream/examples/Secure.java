package eventstream.examples;

import com.google.protobuf.ByteString;
import eventstream.v1.Event;
import eventstream.v1.PublishAck;
import eventstream.v1.PublishRequest;
import eventstream.v1.PublishServiceGrpc;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.MetadataUtils;
import java.io.File;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Publishes one event to an EventStream node over TLS: the server's certificate
 * checked against a CA, optionally a client certificate (mutual TLS) and a
 * bearer token (docs/security.md).
 *
 * <p>Usage: {@code java -cp target/classes:$(cat target/classpath.txt) eventstream.examples.Secure
 * host:port --ca ca.pem [--cert client.pem --key client.key] [--token TOKEN] [--server-name name]}
 * (the key in PKCS#8 PEM).
 */
public final class Secure {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private Secure() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "127.0.0.1:9200";
    Map<String, String> options = new HashMap<>();
    for (int i = 1; i + 1 < args.length; i += 2) {
      options.put(args[i], args[i + 1]);
    }
    if (!options.containsKey("--ca")) {
      throw new IllegalArgumentException("--ca: the CA that signed the server's certificate is required");
    }
    TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder()
        .trustManager(new File(options.get("--ca")));
    if (options.containsKey("--cert")) {
      tls.keyManager(new File(options.get("--cert")), new File(options.get("--key")));
    }
    ChannelCredentials credentials = tls.build();
    ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(target, credentials);
    if (options.containsKey("--server-name")) {
      builder.overrideAuthority(options.get("--server-name"));
    }
    ManagedChannel channel = builder.build();
    try {
      PublishServiceGrpc.PublishServiceBlockingStub publisher =
          PublishServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
      if (options.containsKey("--token")) {
        // The token goes in the "authorization" header of every call.
        Metadata headers = new Metadata();
        headers.put(AUTHORIZATION, "Bearer " + options.get("--token"));
        publisher = publisher.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
      }
      PublishAck ack = publisher.publish(PublishRequest.newBuilder()
          .setEvent(Event.newBuilder()
              .setTopic(options.getOrDefault("--topic", "examples/java"))
              .setPayload(ByteString.copyFromUtf8("hello over TLS")))
          .build()).getAck();
      System.out.printf("published %s at partition %d offset %d%n", ack.getId(), ack.getPartition(), ack.getOffset());
    } finally {
      channel.shutdown().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
