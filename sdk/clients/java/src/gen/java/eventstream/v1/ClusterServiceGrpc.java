package eventstream.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Reports the state of the cluster the node belongs to, and changes its
 * membership.
 * The membership changes (AddMember, PromoteLearner, RemoveMember) and
 * TransferLeadership are administrative: when authentication is configured
 * they need an identity with the `admin` permission (else PERMISSION_DENIED).
 * They are served by the leader only: a follower answers UNAVAILABLE with the
 * reason NOT_LEADER and the leader's node id and public address in the
 * google.rpc.ErrorInfo metadata (`leader_id`, `leader_address`); call the
 * leader. A membership change is one log entry, applied by every node; the
 * call returns once the leader applied it. One change at a time: another
 * change while one is not applied yet is FAILED_PRECONDITION
 * (MEMBERSHIP_CHANGE_PENDING).
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class ClusterServiceGrpc {

  private ClusterServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "eventstream.v1.ClusterService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<eventstream.v1.GetClusterStatusRequest,
      eventstream.v1.GetClusterStatusResponse> getGetClusterStatusMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetClusterStatus",
      requestType = eventstream.v1.GetClusterStatusRequest.class,
      responseType = eventstream.v1.GetClusterStatusResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<eventstream.v1.GetClusterStatusRequest,
      eventstream.v1.GetClusterStatusResponse> getGetClusterStatusMethod() {
    io.grpc.MethodDescriptor<eventstream.v1.GetClusterStatusRequest, eventstream.v1.GetClusterStatusResponse> getGetClusterStatusMethod;
    if ((getGetClusterStatusMethod = ClusterServiceGrpc.getGetClusterStatusMethod) == null) {
      synchronized (ClusterServiceGrpc.class) {
        if ((getGetClusterStatusMethod = ClusterServiceGrpc.getGetClusterStatusMethod) == null) {
          ClusterServiceGrpc.getGetClusterStatusMethod = getGetClusterStatusMethod =
              io.grpc.MethodDescriptor.<eventstream.v1.GetClusterStatusRequest, eventstream.v1.GetClusterStatusResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetClusterStatus"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.GetClusterStatusRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.GetClusterStatusResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ClusterServiceMethodDescriptorSupplier("GetClusterStatus"))
              .build();
        }
      }
    }
    return getGetClusterStatusMethod;
  }

  private static volatile io.grpc.MethodDescriptor<eventstream.v1.AddMemberRequest,
      eventstream.v1.AddMemberResponse> getAddMemberMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "AddMember",
      requestType = eventstream.v1.AddMemberRequest.class,
      responseType = eventstream.v1.AddMemberResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<eventstream.v1.AddMemberRequest,
      eventstream.v1.AddMemberResponse> getAddMemberMethod() {
    io.grpc.MethodDescriptor<eventstream.v1.AddMemberRequest, eventstream.v1.AddMemberResponse> getAddMemberMethod;
    if ((getAddMemberMethod = ClusterServiceGrpc.getAddMemberMethod) == null) {
      synchronized (ClusterServiceGrpc.class) {
        if ((getAddMemberMethod = ClusterServiceGrpc.getAddMemberMethod) == null) {
          ClusterServiceGrpc.getAddMemberMethod = getAddMemberMethod =
              io.grpc.MethodDescriptor.<eventstream.v1.AddMemberRequest, eventstream.v1.AddMemberResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "AddMember"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.AddMemberRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.AddMemberResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ClusterServiceMethodDescriptorSupplier("AddMember"))
              .build();
        }
      }
    }
    return getAddMemberMethod;
  }

  private static volatile io.grpc.MethodDescriptor<eventstream.v1.PromoteLearnerRequest,
      eventstream.v1.PromoteLearnerResponse> getPromoteLearnerMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "PromoteLearner",
      requestType = eventstream.v1.PromoteLearnerRequest.class,
      responseType = eventstream.v1.PromoteLearnerResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<eventstream.v1.PromoteLearnerRequest,
      eventstream.v1.PromoteLearnerResponse> getPromoteLearnerMethod() {
    io.grpc.MethodDescriptor<eventstream.v1.PromoteLearnerRequest, eventstream.v1.PromoteLearnerResponse> getPromoteLearnerMethod;
    if ((getPromoteLearnerMethod = ClusterServiceGrpc.getPromoteLearnerMethod) == null) {
      synchronized (ClusterServiceGrpc.class) {
        if ((getPromoteLearnerMethod = ClusterServiceGrpc.getPromoteLearnerMethod) == null) {
          ClusterServiceGrpc.getPromoteLearnerMethod = getPromoteLearnerMethod =
              io.grpc.MethodDescriptor.<eventstream.v1.PromoteLearnerRequest, eventstream.v1.PromoteLearnerResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "PromoteLearner"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.PromoteLearnerRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.PromoteLearnerResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ClusterServiceMethodDescriptorSupplier("PromoteLearner"))
              .build();
        }
      }
    }
    return getPromoteLearnerMethod;
  }

  private static volatile io.grpc.MethodDescriptor<eventstream.v1.RemoveMemberRequest,
      eventstream.v1.RemoveMemberResponse> getRemoveMemberMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RemoveMember",
      requestType = eventstream.v1.RemoveMemberRequest.class,
      responseType = eventstream.v1.RemoveMemberResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<eventstream.v1.RemoveMemberRequest,
      eventstream.v1.RemoveMemberResponse> getRemoveMemberMethod() {
    io.grpc.MethodDescriptor<eventstream.v1.RemoveMemberRequest, eventstream.v1.RemoveMemberResponse> getRemoveMemberMethod;
    if ((getRemoveMemberMethod = ClusterServiceGrpc.getRemoveMemberMethod) == null) {
      synchronized (ClusterServiceGrpc.class) {
        if ((getRemoveMemberMethod = ClusterServiceGrpc.getRemoveMemberMethod) == null) {
          ClusterServiceGrpc.getRemoveMemberMethod = getRemoveMemberMethod =
              io.grpc.MethodDescriptor.<eventstream.v1.RemoveMemberRequest, eventstream.v1.RemoveMemberResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RemoveMember"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.RemoveMemberRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.RemoveMemberResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ClusterServiceMethodDescriptorSupplier("RemoveMember"))
              .build();
        }
      }
    }
    return getRemoveMemberMethod;
  }

  private static volatile io.grpc.MethodDescriptor<eventstream.v1.TransferLeadershipRequest,
      eventstream.v1.TransferLeadershipResponse> getTransferLeadershipMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "TransferLeadership",
      requestType = eventstream.v1.TransferLeadershipRequest.class,
      responseType = eventstream.v1.TransferLeadershipResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<eventstream.v1.TransferLeadershipRequest,
      eventstream.v1.TransferLeadershipResponse> getTransferLeadershipMethod() {
    io.grpc.MethodDescriptor<eventstream.v1.TransferLeadershipRequest, eventstream.v1.TransferLeadershipResponse> getTransferLeadershipMethod;
    if ((getTransferLeadershipMethod = ClusterServiceGrpc.getTransferLeadershipMethod) == null) {
      synchronized (ClusterServiceGrpc.class) {
        if ((getTransferLeadershipMethod = ClusterServiceGrpc.getTransferLeadershipMethod) == null) {
          ClusterServiceGrpc.getTransferLeadershipMethod = getTransferLeadershipMethod =
              io.grpc.MethodDescriptor.<eventstream.v1.TransferLeadershipRequest, eventstream.v1.TransferLeadershipResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "TransferLeadership"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.TransferLeadershipRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  eventstream.v1.TransferLeadershipResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ClusterServiceMethodDescriptorSupplier("TransferLeadership"))
              .build();
        }
      }
    }
    return getTransferLeadershipMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static ClusterServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ClusterServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ClusterServiceStub>() {
        @java.lang.Override
        public ClusterServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ClusterServiceStub(channel, callOptions);
        }
      };
    return ClusterServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static ClusterServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ClusterServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ClusterServiceBlockingV2Stub>() {
        @java.lang.Override
        public ClusterServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ClusterServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return ClusterServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static ClusterServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ClusterServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ClusterServiceBlockingStub>() {
        @java.lang.Override
        public ClusterServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ClusterServiceBlockingStub(channel, callOptions);
        }
      };
    return ClusterServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static ClusterServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ClusterServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ClusterServiceFutureStub>() {
        @java.lang.Override
        public ClusterServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ClusterServiceFutureStub(channel, callOptions);
        }
      };
    return ClusterServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Reports the state of the cluster the node belongs to, and changes its
   * membership.
   * The membership changes (AddMember, PromoteLearner, RemoveMember) and
   * TransferLeadership are administrative: when authentication is configured
   * they need an identity with the `admin` permission (else PERMISSION_DENIED).
   * They are served by the leader only: a follower answers UNAVAILABLE with the
   * reason NOT_LEADER and the leader's node id and public address in the
   * google.rpc.ErrorInfo metadata (`leader_id`, `leader_address`); call the
   * leader. A membership change is one log entry, applied by every node; the
   * call returns once the leader applied it. One change at a time: another
   * change while one is not applied yet is FAILED_PRECONDITION
   * (MEMBERSHIP_CHANGE_PENDING).
   * </pre>
   */
  public interface AsyncService {

    /**
     */
    default void getClusterStatus(eventstream.v1.GetClusterStatusRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.GetClusterStatusResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetClusterStatusMethod(), responseObserver);
    }

    /**
     * <pre>
     * Adds a node as a learner: it receives the log and serves readers, but
     * does not vote until promoted. Its address is recorded in the log, so
     * every member can reach it. ALREADY_EXISTS (MEMBER_EXISTS) for a member.
     * </pre>
     */
    default void addMember(eventstream.v1.AddMemberRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.AddMemberResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getAddMemberMethod(), responseObserver);
    }

    /**
     * <pre>
     * Makes a learner a voter. FAILED_PRECONDITION (LEARNER_BEHIND) while the
     * learner's log is more than `max_lag` entries behind the leader's, or
     * before it acknowledged any entry; FAILED_PRECONDITION (NOT_LEARNER) for
     * a voter; NOT_FOUND (MEMBER_UNKNOWN) for a stranger.
     * </pre>
     */
    default void promoteLearner(eventstream.v1.PromoteLearnerRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.PromoteLearnerResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPromoteLearnerMethod(), responseObserver);
    }

    /**
     * <pre>
     * Removes a voter or a learner; it stops receiving the log. NOT_FOUND
     * (MEMBER_UNKNOWN) for a stranger; FAILED_PRECONDITION (LAST_VOTER) for the
     * only voter. Removing the leader makes it hand leadership over.
     * </pre>
     */
    default void removeMember(eventstream.v1.RemoveMemberRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.RemoveMemberResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRemoveMemberMethod(), responseObserver);
    }

    /**
     * <pre>
     * Hands leadership to a voter (or the most up-to-date one). Returns once
     * another node leads, or DEADLINE_EXCEEDED (TRANSFER_TIMEOUT) after an
     * election timeout without one.
     * </pre>
     */
    default void transferLeadership(eventstream.v1.TransferLeadershipRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.TransferLeadershipResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getTransferLeadershipMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service ClusterService.
   * <pre>
   * Reports the state of the cluster the node belongs to, and changes its
   * membership.
   * The membership changes (AddMember, PromoteLearner, RemoveMember) and
   * TransferLeadership are administrative: when authentication is configured
   * they need an identity with the `admin` permission (else PERMISSION_DENIED).
   * They are served by the leader only: a follower answers UNAVAILABLE with the
   * reason NOT_LEADER and the leader's node id and public address in the
   * google.rpc.ErrorInfo metadata (`leader_id`, `leader_address`); call the
   * leader. A membership change is one log entry, applied by every node; the
   * call returns once the leader applied it. One change at a time: another
   * change while one is not applied yet is FAILED_PRECONDITION
   * (MEMBERSHIP_CHANGE_PENDING).
   * </pre>
   */
  public static abstract class ClusterServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return ClusterServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service ClusterService.
   * <pre>
   * Reports the state of the cluster the node belongs to, and changes its
   * membership.
   * The membership changes (AddMember, PromoteLearner, RemoveMember) and
   * TransferLeadership are administrative: when authentication is configured
   * they need an identity with the `admin` permission (else PERMISSION_DENIED).
   * They are served by the leader only: a follower answers UNAVAILABLE with the
   * reason NOT_LEADER and the leader's node id and public address in the
   * google.rpc.ErrorInfo metadata (`leader_id`, `leader_address`); call the
   * leader. A membership change is one log entry, applied by every node; the
   * call returns once the leader applied it. One change at a time: another
   * change while one is not applied yet is FAILED_PRECONDITION
   * (MEMBERSHIP_CHANGE_PENDING).
   * </pre>
   */
  public static final class ClusterServiceStub
      extends io.grpc.stub.AbstractAsyncStub<ClusterServiceStub> {
    private ClusterServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ClusterServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ClusterServiceStub(channel, callOptions);
    }

    /**
     */
    public void getClusterStatus(eventstream.v1.GetClusterStatusRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.GetClusterStatusResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetClusterStatusMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Adds a node as a learner: it receives the log and serves readers, but
     * does not vote until promoted. Its address is recorded in the log, so
     * every member can reach it. ALREADY_EXISTS (MEMBER_EXISTS) for a member.
     * </pre>
     */
    public void addMember(eventstream.v1.AddMemberRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.AddMemberResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getAddMemberMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Makes a learner a voter. FAILED_PRECONDITION (LEARNER_BEHIND) while the
     * learner's log is more than `max_lag` entries behind the leader's, or
     * before it acknowledged any entry; FAILED_PRECONDITION (NOT_LEARNER) for
     * a voter; NOT_FOUND (MEMBER_UNKNOWN) for a stranger.
     * </pre>
     */
    public void promoteLearner(eventstream.v1.PromoteLearnerRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.PromoteLearnerResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPromoteLearnerMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Removes a voter or a learner; it stops receiving the log. NOT_FOUND
     * (MEMBER_UNKNOWN) for a stranger; FAILED_PRECONDITION (LAST_VOTER) for the
     * only voter. Removing the leader makes it hand leadership over.
     * </pre>
     */
    public void removeMember(eventstream.v1.RemoveMemberRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.RemoveMemberResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRemoveMemberMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Hands leadership to a voter (or the most up-to-date one). Returns once
     * another node leads, or DEADLINE_EXCEEDED (TRANSFER_TIMEOUT) after an
     * election timeout without one.
     * </pre>
     */
    public void transferLeadership(eventstream.v1.TransferLeadershipRequest request,
        io.grpc.stub.StreamObserver<eventstream.v1.TransferLeadershipResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getTransferLeadershipMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service ClusterService.
   * <pre>
   * Reports the state of the cluster the node belongs to, and changes its
   * membership.
   * The membership changes (AddMember, PromoteLearner, RemoveMember) and
   * TransferLeadership are administrative: when authentication is configured
   * they need an identity with the `admin` permission (else PERMISSION_DENIED).
   * They are served by the leader only: a follower answers UNAVAILABLE with the
   * reason NOT_LEADER and the leader's node id and public address in the
   * google.rpc.ErrorInfo metadata (`leader_id`, `leader_address`); call the
   * leader. A membership change is one log entry, applied by every node; the
   * call returns once the leader applied it. One change at a time: another
   * change while one is not applied yet is FAILED_PRECONDITION
   * (MEMBERSHIP_CHANGE_PENDING).
   * </pre>
   */
  public static final class ClusterServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<ClusterServiceBlockingV2Stub> {
    private ClusterServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ClusterServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ClusterServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     */
    public eventstream.v1.GetClusterStatusResponse getClusterStatus(eventstream.v1.GetClusterStatusRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetClusterStatusMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Adds a node as a learner: it receives the log and serves readers, but
     * does not vote until promoted. Its address is recorded in the log, so
     * every member can reach it. ALREADY_EXISTS (MEMBER_EXISTS) for a member.
     * </pre>
     */
    public eventstream.v1.AddMemberResponse addMember(eventstream.v1.AddMemberRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getAddMemberMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Makes a learner a voter. FAILED_PRECONDITION (LEARNER_BEHIND) while the
     * learner's log is more than `max_lag` entries behind the leader's, or
     * before it acknowledged any entry; FAILED_PRECONDITION (NOT_LEARNER) for
     * a voter; NOT_FOUND (MEMBER_UNKNOWN) for a stranger.
     * </pre>
     */
    public eventstream.v1.PromoteLearnerResponse promoteLearner(eventstream.v1.PromoteLearnerRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPromoteLearnerMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Removes a voter or a learner; it stops receiving the log. NOT_FOUND
     * (MEMBER_UNKNOWN) for a stranger; FAILED_PRECONDITION (LAST_VOTER) for the
     * only voter. Removing the leader makes it hand leadership over.
     * </pre>
     */
    public eventstream.v1.RemoveMemberResponse removeMember(eventstream.v1.RemoveMemberRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRemoveMemberMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Hands leadership to a voter (or the most up-to-date one). Returns once
     * another node leads, or DEADLINE_EXCEEDED (TRANSFER_TIMEOUT) after an
     * election timeout without one.
     * </pre>
     */
    public eventstream.v1.TransferLeadershipResponse transferLeadership(eventstream.v1.TransferLeadershipRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getTransferLeadershipMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service ClusterService.
   * <pre>
   * Reports the state of the cluster the node belongs to, and changes its
   * membership.
   * The membership changes (AddMember, PromoteLearner, RemoveMember) and
   * TransferLeadership are administrative: when authentication is configured
   * they need an identity with the `admin` permission (else PERMISSION_DENIED).
   * They are served by the leader only: a follower answers UNAVAILABLE with the
   * reason NOT_LEADER and the leader's node id and public address in the
   * google.rpc.ErrorInfo metadata (`leader_id`, `leader_address`); call the
   * leader. A membership change is one log entry, applied by every node; the
   * call returns once the leader applied it. One change at a time: another
   * change while one is not applied yet is FAILED_PRECONDITION
   * (MEMBERSHIP_CHANGE_PENDING).
   * </pre>
   */
  public static final class ClusterServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<ClusterServiceBlockingStub> {
    private ClusterServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ClusterServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ClusterServiceBlockingStub(channel, callOptions);
    }

    /**
     */
    public eventstream.v1.GetClusterStatusResponse getClusterStatus(eventstream.v1.GetClusterStatusRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetClusterStatusMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Adds a node as a learner: it receives the log and serves readers, but
     * does not vote until promoted. Its address is recorded in the log, so
     * every member can reach it. ALREADY_EXISTS (MEMBER_EXISTS) for a member.
     * </pre>
     */
    public eventstream.v1.AddMemberResponse addMember(eventstream.v1.AddMemberRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getAddMemberMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Makes a learner a voter. FAILED_PRECONDITION (LEARNER_BEHIND) while the
     * learner's log is more than `max_lag` entries behind the leader's, or
     * before it acknowledged any entry; FAILED_PRECONDITION (NOT_LEARNER) for
     * a voter; NOT_FOUND (MEMBER_UNKNOWN) for a stranger.
     * </pre>
     */
    public eventstream.v1.PromoteLearnerResponse promoteLearner(eventstream.v1.PromoteLearnerRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPromoteLearnerMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Removes a voter or a learner; it stops receiving the log. NOT_FOUND
     * (MEMBER_UNKNOWN) for a stranger; FAILED_PRECONDITION (LAST_VOTER) for the
     * only voter. Removing the leader makes it hand leadership over.
     * </pre>
     */
    public eventstream.v1.RemoveMemberResponse removeMember(eventstream.v1.RemoveMemberRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRemoveMemberMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Hands leadership to a voter (or the most up-to-date one). Returns once
     * another node leads, or DEADLINE_EXCEEDED (TRANSFER_TIMEOUT) after an
     * election timeout without one.
     * </pre>
     */
    public eventstream.v1.TransferLeadershipResponse transferLeadership(eventstream.v1.TransferLeadershipRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getTransferLeadershipMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service ClusterService.
   * <pre>
   * Reports the state of the cluster the node belongs to, and changes its
   * membership.
   * The membership changes (AddMember, PromoteLearner, RemoveMember) and
   * TransferLeadership are administrative: when authentication is configured
   * they need an identity with the `admin` permission (else PERMISSION_DENIED).
   * They are served by the leader only: a follower answers UNAVAILABLE with the
   * reason NOT_LEADER and the leader's node id and public address in the
   * google.rpc.ErrorInfo metadata (`leader_id`, `leader_address`); call the
   * leader. A membership change is one log entry, applied by every node; the
   * call returns once the leader applied it. One change at a time: another
   * change while one is not applied yet is FAILED_PRECONDITION
   * (MEMBERSHIP_CHANGE_PENDING).
   * </pre>
   */
  public static final class ClusterServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<ClusterServiceFutureStub> {
    private ClusterServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ClusterServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ClusterServiceFutureStub(channel, callOptions);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<eventstream.v1.GetClusterStatusResponse> getClusterStatus(
        eventstream.v1.GetClusterStatusRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetClusterStatusMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Adds a node as a learner: it receives the log and serves readers, but
     * does not vote until promoted. Its address is recorded in the log, so
     * every member can reach it. ALREADY_EXISTS (MEMBER_EXISTS) for a member.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<eventstream.v1.AddMemberResponse> addMember(
        eventstream.v1.AddMemberRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getAddMemberMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Makes a learner a voter. FAILED_PRECONDITION (LEARNER_BEHIND) while the
     * learner's log is more than `max_lag` entries behind the leader's, or
     * before it acknowledged any entry; FAILED_PRECONDITION (NOT_LEARNER) for
     * a voter; NOT_FOUND (MEMBER_UNKNOWN) for a stranger.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<eventstream.v1.PromoteLearnerResponse> promoteLearner(
        eventstream.v1.PromoteLearnerRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPromoteLearnerMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Removes a voter or a learner; it stops receiving the log. NOT_FOUND
     * (MEMBER_UNKNOWN) for a stranger; FAILED_PRECONDITION (LAST_VOTER) for the
     * only voter. Removing the leader makes it hand leadership over.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<eventstream.v1.RemoveMemberResponse> removeMember(
        eventstream.v1.RemoveMemberRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRemoveMemberMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Hands leadership to a voter (or the most up-to-date one). Returns once
     * another node leads, or DEADLINE_EXCEEDED (TRANSFER_TIMEOUT) after an
     * election timeout without one.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<eventstream.v1.TransferLeadershipResponse> transferLeadership(
        eventstream.v1.TransferLeadershipRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getTransferLeadershipMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GET_CLUSTER_STATUS = 0;
  private static final int METHODID_ADD_MEMBER = 1;
  private static final int METHODID_PROMOTE_LEARNER = 2;
  private static final int METHODID_REMOVE_MEMBER = 3;
  private static final int METHODID_TRANSFER_LEADERSHIP = 4;

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
        case METHODID_GET_CLUSTER_STATUS:
          serviceImpl.getClusterStatus((eventstream.v1.GetClusterStatusRequest) request,
              (io.grpc.stub.StreamObserver<eventstream.v1.GetClusterStatusResponse>) responseObserver);
          break;
        case METHODID_ADD_MEMBER:
          serviceImpl.addMember((eventstream.v1.AddMemberRequest) request,
              (io.grpc.stub.StreamObserver<eventstream.v1.AddMemberResponse>) responseObserver);
          break;
        case METHODID_PROMOTE_LEARNER:
          serviceImpl.promoteLearner((eventstream.v1.PromoteLearnerRequest) request,
              (io.grpc.stub.StreamObserver<eventstream.v1.PromoteLearnerResponse>) responseObserver);
          break;
        case METHODID_REMOVE_MEMBER:
          serviceImpl.removeMember((eventstream.v1.RemoveMemberRequest) request,
              (io.grpc.stub.StreamObserver<eventstream.v1.RemoveMemberResponse>) responseObserver);
          break;
        case METHODID_TRANSFER_LEADERSHIP:
          serviceImpl.transferLeadership((eventstream.v1.TransferLeadershipRequest) request,
              (io.grpc.stub.StreamObserver<eventstream.v1.TransferLeadershipResponse>) responseObserver);
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
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getGetClusterStatusMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              eventstream.v1.GetClusterStatusRequest,
              eventstream.v1.GetClusterStatusResponse>(
                service, METHODID_GET_CLUSTER_STATUS)))
        .addMethod(
          getAddMemberMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              eventstream.v1.AddMemberRequest,
              eventstream.v1.AddMemberResponse>(
                service, METHODID_ADD_MEMBER)))
        .addMethod(
          getPromoteLearnerMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              eventstream.v1.PromoteLearnerRequest,
              eventstream.v1.PromoteLearnerResponse>(
                service, METHODID_PROMOTE_LEARNER)))
        .addMethod(
          getRemoveMemberMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              eventstream.v1.RemoveMemberRequest,
              eventstream.v1.RemoveMemberResponse>(
                service, METHODID_REMOVE_MEMBER)))
        .addMethod(
          getTransferLeadershipMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              eventstream.v1.TransferLeadershipRequest,
              eventstream.v1.TransferLeadershipResponse>(
                service, METHODID_TRANSFER_LEADERSHIP)))
        .build();
  }

  private static abstract class ClusterServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    ClusterServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return eventstream.v1.ClusterProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("ClusterService");
    }
  }

  private static final class ClusterServiceFileDescriptorSupplier
      extends ClusterServiceBaseDescriptorSupplier {
    ClusterServiceFileDescriptorSupplier() {}
  }

  private static final class ClusterServiceMethodDescriptorSupplier
      extends ClusterServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    ClusterServiceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (ClusterServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new ClusterServiceFileDescriptorSupplier())
              .addMethod(getGetClusterStatusMethod())
              .addMethod(getAddMemberMethod())
              .addMethod(getPromoteLearnerMethod())
              .addMethod(getRemoveMemberMethod())
              .addMethod(getTransferLeadershipMethod())
              .build();
        }
      }
    }
    return result;
  }
}
