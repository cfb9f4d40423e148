package eventstream.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Publishes events. An event is acknowledged only once it is committed.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class PublishServiceGrpc {

  private PublishServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "eventstream.v1.PublishService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<eventstream.v1.PublishRequest,
      eventstream.v1.PublishResponse> getPublishMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Publish",
      requestType = eventstream.v1.PublishRequest.class,
      responseType = eventstream.v1.PublishResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<eventstream.v1.PublishRequest,
      eventstream.v1.PublishResponse> getPublishMethod() {
    io.grpc.MethodDescriptor<eventstream.v1.PublishRequest, eventstream.v1.PublishResponse> getPublishMethod;
    if ((getPublishMethod = PublishServiceGrpc.getPublishMethod) == null) {
      synchronized (PublishServiceGrpc.class) {
        if ((getPublishMethod = PublishServiceGrpc.getPublishMethod) == null) {
          PublishServiceGrpc.getPublishMethod = getPublishMethod =
              io.grpc.MethodDescriptor.<eventstream.v1.PublishRequest, eventstream.v1.PublishResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Publish"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.PublishRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.PublishResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PublishServiceMethodDescriptorSupplier("Publish"))
              .build();
        }
      }
    }
    return getPublishMethod;
  }

  private static volatile io.grpc.MethodDescriptor<eventstream.v1.PublishBatchRequest,
      eventstream.v1.PublishBatchResponse> getPublishBatchMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "PublishBatch",
      requestType = eventstream.v1.PublishBatchRequest.class,
      responseType = eventstream.v1.PublishBatchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<eventstream.v1.PublishBatchRequest,
      eventstream.v1.PublishBatchResponse> getPublishBatchMethod() {
    io.grpc.MethodDescriptor<eventstream.v1.PublishBatchRequest, eventstream.v1.PublishBatchResponse> getPublishBatchMethod;
    if ((getPublishBatchMethod = PublishServiceGrpc.getPublishBatchMethod) == null) {
      synchronized (PublishServiceGrpc.class) {
        if ((getPublishBatchMethod = PublishServiceGrpc.getPublishBatchMethod) == null) {
          PublishServiceGrpc.getPublishBatchMethod = getPublishBatchMethod =
              io.grpc.MethodDescriptor.<eventstream.v1.PublishBatchRequest, eventstream.v1.PublishBatchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "PublishBatch"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.PublishBatchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.PublishBatchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PublishServiceMethodDescriptorSupplier("PublishBatch"))
              .build();
        }
      }
    }
    return getPublishBatchMethod;
  }

  private static volatile io.grpc.MethodDescriptor<eventstream.v1.PublishStreamRequest,
      eventstream.v1.PublishStreamResponse> getPublishStreamMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "PublishStream",
      requestType = eventstream.v1.PublishStreamRequest.class,
      responseType = eventstream.v1.PublishStreamResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
  public static io.grpc.MethodDescriptor<eventstream.v1.PublishStreamRequest,
      eventstream.v1.PublishStreamResponse> getPublishStreamMethod() {
    io.grpc.MethodDescriptor<eventstream.v1.PublishStreamRequest, eventstream.v1.PublishStreamResponse> getPublishStreamMethod;
    if ((getPublishStreamMethod = PublishServiceGrpc.getPublishStreamMethod) == null) {
      synchronized (PublishServiceGrpc.class) {
        if ((getPublishStreamMethod = PublishServiceGrpc.getPublishStreamMethod) == null) {
          PublishServiceGrpc.getPublishStreamMethod = getPublishStreamMethod =
              io.grpc.MethodDescriptor.<eventstream.v1.PublishStreamRequest, eventstream.v1.PublishStreamResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "PublishStream"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.PublishStreamRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.PublishStreamResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PublishServiceMethodDescriptorSupplier("PublishStream"))
              .build();
        }
      }
    }
    return getPublishStreamMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static PublishServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<PublishServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<PublishServiceStub>() {
        @java.lang.Override
        public PublishServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new PublishServiceStub(channel, callOptions);
        }
      };
    return PublishServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static PublishServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<PublishServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<PublishServiceBlockingV2Stub>() {
        @java.lang.Override
        public PublishServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new PublishServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return PublishServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static PublishServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<PublishServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<PublishServiceBlockingStub>() {
        @java.lang.Override
        public PublishServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new PublishServiceBlockingStub(channel, callOptions);
        }
      };
    return PublishServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static PublishServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<PublishServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<PublishServiceFutureStub>() {
        @java.lang.Override
        public PublishServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new PublishServiceFutureStub(channel, callOptions);
        }
      };
    return PublishServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Publishes events. An event is acknowledged only once it is committed.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Publishes one event.
     * </pre>
     */
    default void publish(eventstream.v1.PublishRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.PublishResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPublishMethod(), responseObserver);
    }

    /**
     * <pre>
     * Publishes many events in one call; each event gets its own result.
     * </pre>
     */
    default void publishBatch(eventstream.v1.PublishBatchRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.PublishBatchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPublishBatchMethod(), responseObserver);
    }

    /**
     * <pre>
     * Pipelined publishing: send requests without waiting; responses come back
     * in the order of the requests, each echoing the request's sequence.
     * </pre>
     */
    default io.grpc.stub.StreamObserver<eventstream.v1.PublishStreamRequest> publishStream(
        io.grpc.stub.StreamObserver<eventstream.v1.PublishStreamResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getPublishStreamMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service PublishService.
   * <pre>
   * Publishes events. An event is acknowledged only once it is committed.
   * </pre>
   */
  public static abstract class PublishServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return PublishServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service PublishService.
   * <pre>
   * Publishes events. An event is acknowledged only once it is committed.
   * </pre>
   */
  public static final class PublishServiceStub
      extends io.grpc.stub.AbstractAsyncStub<PublishServiceStub> {
    private PublishServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected PublishServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new PublishServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Publishes one event.
     * </pre>
     */
    public void publish(eventstream.v1.PublishRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.PublishResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPublishMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Publishes many events in one call; each event gets its own result.
     * </pre>
     */
    public void publishBatch(eventstream.v1.PublishBatchRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.PublishBatchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPublishBatchMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Pipelined publishing: send requests without waiting; responses come back
     * in the order of the requests, each echoing the request's sequence.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<eventstream.v1.PublishStreamRequest> publishStream(
        io.grpc.stub.StreamObserver<eventstream.v1.PublishStreamResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncBidiStreamingCall(
          getChannel().newCall(getPublishStreamMethod(), getCallOptions()), responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service PublishService.
   * <pre>
   * Publishes events. An event is acknowledged only once it is committed.
   * </pre>
   */
  public static final class PublishServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<PublishServiceBlockingV2Stub> {
    private PublishServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected PublishServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new PublishServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Publishes one event.
     * </pre>
     */
    public eventstream.v1.PublishResponse publish(eventstream.v1.PublishRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPublishMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Publishes many events in one call; each event gets its own result.
     * </pre>
     */
    public eventstream.v1.PublishBatchResponse publishBatch(eventstream.v1.PublishBatchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPublishBatchMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Pipelined publishing: send requests without waiting; responses come back
     * in the order of the requests, each echoing the request's sequence.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<eventstream.v1.PublishStreamRequest, eventstream.v1.PublishStreamResponse>
        publishStream() {
      return io.grpc.stub.ClientCalls.blockingBidiStreamingCall(
          getChannel(), getPublishStreamMethod(), getCallOptions());
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service PublishService.
   * <pre>
   * Publishes events. An event is acknowledged only once it is committed.
   * </pre>
   */
  public static final class PublishServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<PublishServiceBlockingStub> {
    private PublishServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected PublishServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new PublishServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Publishes one event.
     * </pre>
     */
    public eventstream.v1.PublishResponse publish(eventstream.v1.PublishRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPublishMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Publishes many events in one call; each event gets its own result.
     * </pre>
     */
    public eventstream.v1.PublishBatchResponse publishBatch(eventstream.v1.PublishBatchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPublishBatchMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service PublishService.
   * <pre>
   * Publishes events. An event is acknowledged only once it is committed.
   * </pre>
   */
  public static final class PublishServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<PublishServiceFutureStub> {
    private PublishServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected PublishServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new PublishServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Publishes one event.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<eventstream.v1.PublishResponse> publish(
        eventstream.v1.PublishRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPublishMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Publishes many events in one call; each event gets its own result.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<eventstream.v1.PublishBatchResponse> publishBatch(
        eventstream.v1.PublishBatchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPublishBatchMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_PUBLISH = 0;
  private static final int METHODID_PUBLISH_BATCH = 1;
  private static final int METHODID_PUBLISH_STREAM = 2;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_PUBLISH:
          serviceImpl.publish((eventstream.v1.PublishRequest) request,
              (io.grpc.stub.StreamObserver<eventstream.v1.PublishResponse>) responseObserver);
          break;
        case METHODID_PUBLISH_BATCH:
          serviceImpl.publishBatch((eventstream.v1.PublishBatchRequest) request,
              (io.grpc.stub.StreamObserver<eventstream.v1.PublishBatchResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_PUBLISH_STREAM:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.publishStream(
              (io.grpc.stub.StreamObserver<eventstream.v1.PublishStreamResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getPublishMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              eventstream.v1.PublishRequest,
              eventstream.v1.PublishResponse>(
                service, METHODID_PUBLISH)))
        .addMethod(
          getPublishBatchMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              eventstream.v1.PublishBatchRequest,
              eventstream.v1.PublishBatchResponse>(
                service, METHODID_PUBLISH_BATCH)))
        .addMethod(
          getPublishStreamMethod(),
          io.grpc.stub.ServerCalls.asyncBidiStreamingCall(
            new MethodHandlers<
              eventstream.v1.PublishStreamRequest,
              eventstream.v1.PublishStreamResponse>(
                service, METHODID_PUBLISH_STREAM)))
        .build();
  }

  private static abstract class PublishServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    PublishServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return eventstream.v1.PublishProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("PublishService");
    }
  }

  private static final class PublishServiceFileDescriptorSupplier
      extends PublishServiceBaseDescriptorSupplier {
    PublishServiceFileDescriptorSupplier() {}
  }

  private static final class PublishServiceMethodDescriptorSupplier
      extends PublishServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    PublishServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (PublishServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new PublishServiceFileDescriptorSupplier())
              .addMethod(getPublishMethod())
              .addMethod(getPublishBatchMethod())
              .addMethod(getPublishStreamMethod())
              .build();
        }
      }
    }
    return result;
  }
}
