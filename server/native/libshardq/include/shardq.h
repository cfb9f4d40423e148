/*
 * shardq.h - the EventStream native core.
 *
 * One small C11 library, loaded from Python with ctypes:
 *
 *   - sharded, bounded multi-producer multi-consumer queues of
 *     variable-length records, with batch push/pop and an eventfd to sleep on;
 *   - a parser/validator for the raw TCP/UDP frame;
 *   - a protobuf wire walker (repeated fields, eventstream.v1.Event spans);
 *   - CRC32C, the partition hash, topic validation and pattern matching;
 *   - NUMA topology discovery, shard memory placement and thread pinning.
 *
 * ABI rules (see docs/design.md):
 *   - Only fixed-width integers, size_t and pointers cross the ABI; structs are
 *     passed by pointer only, and the ones that may grow start with a `size`
 *     field the caller sets to sizeof(struct) so old callers keep working.
 *   - Functions return 0 on success or a negative errno value; the codes with
 *     a queue meaning have SHARDQ_E* names below. Pure functions (CRC, hash,
 *     version) return their value directly.
 *   - Every value below is append-only: never renumber a code or a field.
 *   - The library copies bytes in and out; it never keeps a pointer to caller
 *     memory after a call returns.
 *
 * Integers in record and frame headers are big-endian, like the frame.
 */
#ifndef SHARDQ_H
#define SHARDQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change of a signature, struct or constant. */
#define SHARDQ_ABI_VERSION 6u

/* ---- Return codes (negative errno values). ----------------------------- */
#define SHARDQ_OK 0
#define SHARDQ_EFULL (-28)       /* -ENOSPC: the shard has no room; nothing or only a prefix pushed */
#define SHARDQ_EEMPTY (-11)      /* -EAGAIN: nothing to pop */
#define SHARDQ_E2BIG (-90)       /* -EMSGSIZE: a record is larger than max_record */
#define SHARDQ_ENOBUFS (-105)    /* -ENOBUFS: caller's output buffer/array too small */
#define SHARDQ_EINVAL (-22)      /* -EINVAL: bad argument */
#define SHARDQ_EBADMSG (-74)     /* -EBADMSG: malformed input (record batch, protobuf) */
#define SHARDQ_EILSEQ (-84)      /* -EILSEQ: a protobuf string field is not UTF-8 */
#define SHARDQ_ENOMEM (-12)      /* -ENOMEM: allocation failed */
#define SHARDQ_ECLOSED (-32)     /* -EPIPE: queue closed (push refused; wait: closed and empty) */
#define SHARDQ_ENOTEMPTY (-39)   /* -ENOTEMPTY: sleep refused, records are waiting */
#define SHARDQ_ETIMEDOUT (-110)  /* -ETIMEDOUT: wait timed out */
#define SHARDQ_ENOENT (-2)       /* -ENOENT: NUMA node or sysfs file not found */

/* Pass as `shard` to let the queue pick (round-robin). */
#define SHARDQ_SHARD_ANY UINT32_MAX

/* shardq_push_batch() flags. */
#define SHARDQ_PUSH_ALL_OR_NOTHING 1u

/* shardq_options.flags */
#define SHARDQ_OPT_NUMA 1u       /* place shard i on node (i mod nodes) */

/* shardq_features() bits */
#define SHARDQ_FEATURE_CRC32C_HW 1u   /* CRC32C uses the SSE4.2 instruction */

/**
 * shardq_abi_version - the ABI version the library was built with.
 *
 * Returns: SHARDQ_ABI_VERSION. The Python loader refuses a library whose
 * version differs from the one it was written for.
 * Thread-safety: safe from any thread.
 */
uint32_t shardq_abi_version(void);

/**
 * shardq_features - run-time features detected by the library.
 *
 * Returns: a bit set of SHARDQ_FEATURE_*.
 * Thread-safety: safe from any thread.
 */
uint32_t shardq_features(void);

/* ======================================================================== */
/* Queues                                                                   */
/* ======================================================================== */

/* Opaque queue: one per lane (realtime, batch). */
typedef struct shardq shardq_t;

/*
 * Options for shardq_create(). Set `size` to sizeof(struct shardq_options).
 *
 * Capacities are for the whole queue and split evenly across the shards:
 * each shard holds ceil(capacity_records / shards) records and
 * ceil(capacity_bytes / shards) bytes rounded up to a power of two. A record
 * costs 4 + its length bytes. shardq_stats() reports the rounded figures.
 */
struct shardq_options {
    uint32_t size;              /* sizeof(struct shardq_options) */
    uint32_t shards;            /* 1..1024 */
    uint64_t capacity_records;  /* > 0 */
    uint64_t capacity_bytes;    /* > 0; includes the 4-byte header per record */
    uint32_t max_record;        /* largest record in bytes; 0 = fits an empty shard */
    uint32_t flags;             /* SHARDQ_OPT_* */
    const char *sysfs_root;     /* root holding devices/system/node; NULL = "/sys" */
};

/*
 * Statistics of a queue or one shard, read with shardq_stats().
 * Set `size` to sizeof(struct shardq_stats).
 */
struct shardq_stats {
    uint64_t size;              /* in: sizeof(struct shardq_stats) */
    uint64_t shards;            /* shards counted in this snapshot */
    uint64_t depth;             /* records waiting */
    uint64_t depth_bytes;       /* bytes in use, headers included */
    uint64_t capacity_records;  /* records the shard(s) can hold */
    uint64_t capacity_bytes;    /* bytes the shard(s) can hold */
    uint64_t pushes;            /* records pushed, ever */
    uint64_t pops;              /* records popped, ever */
    uint64_t full_rejections;   /* records refused because the shard was full */
    uint64_t too_large_rejections; /* push calls refused with SHARDQ_E2BIG */
    uint64_t wakeups;           /* eventfd writes */
    int64_t numa_node;          /* node of the shard's memory, -1 = not placed / mixed */
    int64_t numa_errno;         /* 0, or the errno mbind returned (placement is best effort) */
};

/**
 * shardq_create - make a queue.
 * @opts: options (read only; not kept).
 * @out:  receives the queue.
 *
 * Allocates each shard's ring with mmap; with SHARDQ_OPT_NUMA the ring is
 * bound (MPOL_PREFERRED) to its node before it is first touched. A failed
 * mbind does not fail creation: shardq_stats() reports it in numa_errno.
 * Creates a non-blocking eventfd (see shardq_eventfd()).
 *
 * Returns: 0; SHARDQ_EINVAL for bad options (zero capacity, shards out of
 * range, max_record larger than a shard, opts->size too small);
 * SHARDQ_ENOMEM; another negative errno if eventfd() fails.
 * Ownership: the caller owns *out and releases it with shardq_destroy().
 * Thread-safety: safe from any thread.
 */
int shardq_create(const struct shardq_options *opts, shardq_t **out);

/**
 * shardq_destroy - release a queue, its memory and its eventfd.
 * @q: the queue, or NULL (no-op).
 *
 * Records still queued are dropped.
 * Thread-safety: the caller must ensure no other thread uses @q any more.
 */
void shardq_destroy(shardq_t *q);

/**
 * shardq_push_batch - push records from one contiguous buffer into one shard.
 * @q:      the queue.
 * @shard:  shard index, or SHARDQ_SHARD_ANY (round-robin over calls).
 * @buf:    records, each a u32 big-endian length followed by that many bytes.
 *          A run of frames from shardq_frame_parse() is such a buffer.
 * @len:    bytes in @buf; must end exactly at a record boundary.
 * @flags:  0, or SHARDQ_PUSH_ALL_OR_NOTHING.
 * @pushed: receives the number of records pushed (may be NULL).
 *
 * The whole buffer is validated before anything is pushed. Then, by default,
 * the longest prefix of records that fits in the shard (by records and by
 * bytes) is pushed; with SHARDQ_PUSH_ALL_OR_NOTHING either every record is
 * pushed or none. Records keep their order within the shard. Each push that
 * finds a consumer asleep (see shardq_sleep_prepare()) wakes it.
 *
 * Returns: 0 when at least one record was pushed (check *pushed against the
 * count you sent: the rest did not fit) or @len is 0;
 * SHARDQ_EFULL when nothing was pushed for lack of room (full_rejections
 * counts the records refused); SHARDQ_E2BIG when a record exceeds max_record
 * (nothing pushed, *pushed = index of that record); SHARDQ_EBADMSG when @buf
 * does not end at a record boundary (nothing pushed); SHARDQ_EINVAL for a bad
 * shard or flag; SHARDQ_ECLOSED after shardq_close().
 * Ownership: records are copied in; @buf is not kept.
 * Thread-safety: safe from any number of threads (multi-producer).
 */
int shardq_push_batch(shardq_t *q, uint32_t shard, const void *buf, size_t len,
                      uint32_t flags, size_t *pushed);

/**
 * shardq_pop_batch - pop whole records into a caller buffer.
 * @q:           the queue.
 * @shard:       shard index, or SHARDQ_SHARD_ANY: visit every shard once,
 *               starting at a round-robin position, and take from each in turn.
 * @max_records: most records to take (> 0).
 * @buf:         output: records in the push format (u32 BE length + bytes).
 * @buf_len:     size of @buf.
 * @n_records:   receives the number of records written (may be NULL).
 * @n_bytes:     receives the bytes written, or with SHARDQ_ENOBUFS the size
 *               the first waiting record needs (may be NULL).
 *
 * Records of one shard come out in push order. Only whole records are
 * copied; the call stops at @max_records or when the next record would not
 * fit in what is left of @buf.
 *
 * Returns: 0 with at least one record; SHARDQ_EEMPTY when there was nothing
 * to pop; SHARDQ_ENOBUFS when records wait but the first does not fit in
 * @buf (nothing popped, *n_bytes = bytes it needs); SHARDQ_EINVAL.
 * Ownership: bytes are copied out; the queue keeps nothing of @buf.
 * Thread-safety: safe from any number of threads (multi-consumer).
 */
int shardq_pop_batch(shardq_t *q, uint32_t shard, size_t max_records, void *buf,
                     size_t buf_len, size_t *n_records, size_t *n_bytes);

/**
 * shardq_stats - counters of the queue or of one shard, in one call.
 * @q:     the queue.
 * @shard: shard index, or SHARDQ_SHARD_ANY for the sum over all shards.
 * @out:   receives the snapshot; set out->size first.
 *
 * Each shard is read under its lock, so one shard's figures are consistent;
 * a sum over shards is not a single instant when other threads are busy.
 *
 * Returns: 0; SHARDQ_EINVAL for a bad shard or out->size too small.
 * Thread-safety: safe from any thread.
 */
int shardq_stats(shardq_t *q, uint32_t shard, struct shardq_stats *out);

/**
 * shardq_eventfd - the queue's eventfd, for poll/epoll/loop.add_reader().
 * @q:      the queue.
 * @fd_out: receives the descriptor (non-blocking, close-on-exec).
 *
 * The fd becomes readable when a push (or shardq_close()) wakes sleepers.
 * Read it (8 bytes, or shardq_wakeup_clear()) to make it unreadable again.
 *
 * Returns: 0, or SHARDQ_EINVAL.
 * Ownership: the queue owns the fd and closes it in shardq_destroy();
 * do not close it yourself.
 * Thread-safety: safe from any thread.
 */
int shardq_eventfd(shardq_t *q, int32_t *fd_out);

/**
 * shardq_sleep_prepare - announce that a consumer is about to sleep.
 * @q: the queue.
 *
 * Consumer protocol: pop until SHARDQ_EEMPTY, call this, and sleep on the
 * eventfd only when it returns 0. The next push after a 0 return writes the
 * eventfd, so a record pushed concurrently is never left unnoticed.
 *
 * Returns: 0 when the queue is empty and the caller may sleep;
 * SHARDQ_ENOTEMPTY when records are waiting (pop instead);
 * SHARDQ_ECLOSED when the queue is closed and empty.
 * Thread-safety: safe from any number of consumers.
 */
int shardq_sleep_prepare(shardq_t *q);

/**
 * shardq_wakeup_clear - consume a pending eventfd wake-up, if any.
 * @q: the queue.
 *
 * Returns: 0 (also when nothing was pending).
 * Thread-safety: safe from any thread.
 */
int shardq_wakeup_clear(shardq_t *q);

/**
 * shardq_wait - block until records wait, the queue closes, or a timeout.
 * @q:          the queue.
 * @timeout_ms: most milliseconds to wait; negative waits without limit.
 *
 * For drain threads (ctypes releases the GIL during the call). Implements
 * the shardq_sleep_prepare() protocol with poll(2) on the eventfd.
 *
 * Returns: 0 when records may be waiting (pop them; a wake-up can be
 * spurious); SHARDQ_ETIMEDOUT; SHARDQ_ECLOSED when closed and empty;
 * another negative errno if poll fails.
 * Thread-safety: safe from any number of threads.
 */
int shardq_wait(shardq_t *q, int32_t timeout_ms);

/**
 * shardq_close - refuse further pushes and wake every sleeper.
 * @q: the queue.
 *
 * Records already queued can still be popped. Idempotent.
 *
 * Returns: 0.
 * Thread-safety: safe from any thread.
 */
int shardq_close(shardq_t *q);

/* ======================================================================== */
/* Frames                                                                   */
/* ======================================================================== */

/*
 * Raw TCP/UDP frame, big-endian:
 *   u32 length (of what follows) | u8 priority | u16 topic_len | topic | payload
 *
 * Reason codes of a frame descriptor. Append-only. Codes marked "fatal" end
 * the walk: the stream's framing can no longer be trusted (TCP: close the
 * connection; UDP: drop the rest of the datagram).
 */
#define SHARDQ_FRAME_OK 0
#define SHARDQ_FRAME_TRUNCATED 1          /* fatal: buffer ends inside the frame (final mode) */
#define SHARDQ_FRAME_TOO_LONG 2           /* fatal: length > max_frame */
#define SHARDQ_FRAME_BAD_LENGTH 3         /* length < 3, or topic_len runs past the frame */
#define SHARDQ_FRAME_BAD_PRIORITY 4       /* priority byte > 4 */
#define SHARDQ_FRAME_TOPIC_EMPTY 5        /* topic_len == 0 */
#define SHARDQ_FRAME_TOPIC_NOT_UTF8 6     /* topic is not well-formed UTF-8 */
#define SHARDQ_FRAME_TOPIC_WILDCARD 7     /* topic contains '*' or '#' */
#define SHARDQ_FRAME_TOPIC_EMPTY_LEVEL 8  /* leading/trailing '/' or "//" */

/* shardq_frame_parse() flags */
#define SHARDQ_FRAME_FINAL 1u   /* the buffer is complete (UDP datagram): a short tail is TRUNCATED */

/*
 * One frame found by shardq_frame_parse(). Offsets are from the start of
 * the parsed buffer. For a TOO_LONG frame only offset, length (4 + declared
 * length) and reason are set; for TRUNCATED, length is the bytes present.
 * For BAD_LENGTH and BAD_PRIORITY the topic/payload fields are 0.
 */
struct shardq_frame {
    uint32_t offset;       /* first byte of the length prefix */
    uint32_t length;       /* 4 + declared length: the whole frame */
    uint32_t reason;       /* SHARDQ_FRAME_* */
    uint32_t priority;     /* priority byte (valid when reason is OK) */
    uint32_t topic_off;
    uint32_t topic_len;
    uint32_t payload_off;
    uint32_t payload_len;
    uint32_t hash;         /* shardq_hash() of the topic (reason OK only) */
    uint32_t reserved;     /* 0 */
};

/**
 * shardq_frame_parse - walk a buffer of frames and describe each.
 * @buf:       bytes received.
 * @len:       bytes in @buf (at most UINT32_MAX).
 * @max_frame: largest allowed declared length.
 * @flags:     0 (stream: an incomplete tail is left for the next call) or
 *             SHARDQ_FRAME_FINAL (datagram: an incomplete tail is TRUNCATED).
 * @out:       descriptor array.
 * @max_out:   entries in @out (> 0).
 * @n_out:     receives the number of descriptors written.
 * @consumed:  receives the bytes covered by the non-fatal descriptors: the
 *             stream reader keeps buf[consumed:] for the next call.
 *
 * Frames with a non-fatal reason are described and skipped; a fatal one is
 * described last and not counted in *consumed. The walk stops at the end of
 * the buffer, at an incomplete tail, at a fatal frame, or when @out is full.
 *
 * Returns: 0; SHARDQ_EINVAL for bad arguments.
 * Ownership: nothing is kept; descriptors point into the caller's @buf.
 * Thread-safety: pure; safe from any thread.
 */
int shardq_frame_parse(const void *buf, size_t len, uint32_t max_frame, uint32_t flags,
                       struct shardq_frame *out, size_t max_out, size_t *n_out,
                       size_t *consumed);

/**
 * shardq_topic_check - validate a topic for publishing.
 * @topic: bytes; @len: their count.
 *
 * Returns: SHARDQ_FRAME_OK or one of the SHARDQ_FRAME_TOPIC_* reasons, in
 * this order: EMPTY, NOT_UTF8, WILDCARD, EMPTY_LEVEL.
 * Thread-safety: pure.
 */
uint32_t shardq_topic_check(const void *topic, size_t len);

/**
 * shardq_topic_match - match a topic against a subscription pattern.
 * @pattern/@plen: levels separated by '/'; '*' is exactly one non-empty
 *                 level; '#', as the last level only, matches the rest,
 *                 including nothing ("orders/#" matches "orders"; "#" matches
 *                 every topic).
 * @topic/@tlen:   the topic (not validated here).
 *
 * Returns: 1 on a match, 0 otherwise; SHARDQ_EINVAL when the pattern is
 * invalid (empty, an empty level, '#' not alone as the last level, '*' not
 * alone in its level).
 * Thread-safety: pure.
 */
int shardq_topic_match(const void *pattern, size_t plen, const void *topic, size_t tlen);

/**
 * shardq_topic_match_batch - match many topics against one pattern.
 * @pattern/@plen: as for shardq_topic_match().
 * @base:          buffer holding the topics.
 * @spans:         2 * @n u32 values: (offset, length) of each topic in @base.
 * @n:             number of topics.
 * @out:           @n bytes: 1 match, 0 no match.
 *
 * Returns: 0; SHARDQ_EINVAL for an invalid pattern.
 * Thread-safety: pure. Spans are trusted to lie inside @base.
 */
int shardq_topic_match_batch(const void *pattern, size_t plen, const void *base,
                             const uint32_t *spans, size_t n, uint8_t *out);

/* In/out state of shardq_records_select(); set size = sizeof(struct). */
struct shardq_select_args {
    uint32_t size;
    uint32_t skip;              /* records of the block to pass over first (by length only) */
    uint32_t limit;             /* most records to examine after them */
    uint32_t min_priority;      /* records of a lower priority byte do not match */
    uint32_t match_all;         /* 1: every topic matches (patterns unused) */
    uint32_t n_patterns;        /* patterns in @patterns (0 with match_all: none match otherwise) */
    const void *patterns;       /* n_patterns x (u16 little-endian length, the pattern's bytes) */
    size_t patterns_len;
    uint64_t budget;            /* most bytes of matches a delivery holds ... */
    uint64_t held;              /* ... of which the caller holds these already (from other blocks) */
    uint32_t held_any;          /* 1 when the caller holds a match (0: the first match goes whatever its size) */
    /* out */
    uint32_t examined;          /* records examined: the reader's cursor moves on by this many */
    uint32_t matched;           /* matches written to out */
    uint32_t full;              /* 1: stopped before a match that would pass the budget */
    uint64_t out_len;           /* bytes written to out */
    uint64_t end;               /* position in the block after the last record examined (or skipped) */
};

/**
 * shardq_records_select - a subscriber's matches among the records of a block, in one call.
 * @block/@len: records of the entry log's segment format (little-endian u32 length, u32 crc32c,
 *              u64 offset, i64 time, u8 priority, u16 topic length, topic, framed event),
 *              back to back; CRCs are not checked here.
 * @a:          what to take, and what was taken.
 * @out/@cap:   receives the framed events of the matching records back to back (the
 *              stored bytes, unchanged); @cap at least @len always suffices.
 *
 * After @a->skip records, examines up to @a->limit records: one matches when its
 * priority byte is at least @a->min_priority and its topic matches a pattern (see
 * shardq_topic_match()). A match that would take the delivery past @a->budget stops
 * the scan before it (it starts the next delivery), unless the delivery holds
 * nothing yet. Topics repeat, so the answer for a topic is remembered within the call.
 *
 * Returns: 0; SHARDQ_EBADMSG when a record runs past the block or its topic past the
 * record (@a->end says where; what was examined before it is reported);
 * SHARDQ_ENOBUFS when @cap is too small for the matches; SHARDQ_EINVAL for bad
 * arguments or an invalid pattern.
 * Thread-safety: pure.
 */
int shardq_records_select(const void *block, size_t len, struct shardq_select_args *a, void *out,
                          size_t cap);

/* ======================================================================== */
/* Protobuf wire walking                                                    */
/* ======================================================================== */

/**
 * shardq_pb_fields - find every occurrence of a length-delimited field.
 * @msg/@len:  one encoded message (at most UINT32_MAX bytes).
 * @field:     field number (1..2^29-1), e.g. 1 for PublishBatchRequest.events.
 * @spans:     output: 2 u32 per occurrence: (offset, length) of the field's
 *             bytes (after tag and length), offsets from @msg.
 * @max_spans: pairs @spans can hold.
 * @n_spans:   receives the occurrences found (all of them, even when more
 *             than @max_spans).
 *
 * The whole message is checked to be well-formed wire data (tags, varints,
 * lengths within bounds, no groups) without decoding nested messages.
 *
 * Returns: 0; SHARDQ_ENOBUFS when more than @max_spans were found (the first
 * @max_spans are written; *n_spans is the number needed); SHARDQ_EBADMSG
 * for malformed data, or @field with a wire type other than 2; SHARDQ_EINVAL.
 * Thread-safety: pure.
 */
int shardq_pb_fields(const void *msg, size_t len, uint32_t field, uint32_t *spans,
                     size_t max_spans, size_t *n_spans);

/*
 * Spans of one eventstream.v1.Event. Offsets are from the buffer passed in.
 * A field that is absent has offset 0 and length 0 (see `seen`).
 */
struct shardq_event_spans {
    uint32_t id_off, id_len;           /* field 1 */
    uint32_t topic_off, topic_len;     /* field 2 */
    uint32_t key_off, key_len;         /* field 3 */
    uint32_t payload_off, payload_len; /* field 4 */
    uint32_t event_off, event_len;     /* the Event's own bytes */
    uint32_t hash;                     /* shardq_hash(key, topic) */
    uint32_t reserved;                 /* 0 */
    int64_t priority;                  /* field 5 as protobuf reads an enum (int32); 0 if absent */
    uint64_t seen;                     /* bit n set: field n occurred */
};

/**
 * shardq_pb_events - walk a repeated Event field and describe each Event.
 * @msg/@len:   the outer message, e.g. PublishBatchRequest (events = 1).
 * @field:      the repeated Event field number.
 * @out:        descriptor array; @max_out entries.
 * @n_out:      receives the Events found; on SHARDQ_EBADMSG/SHARDQ_EILSEQ,
 *              the index of the offending Event (or of the outer problem).
 *
 * Each Event is checked: known fields must have their declared wire type
 * (1-4, 6-8 length-delimited; 5, 9, 10 varint), strings 1-3 must be UTF-8,
 * fields 6-8 must hold well-formed wire data; unknown fields are skipped.
 * For a singular field that occurs twice the last one wins, as in protobuf.
 *
 * Returns: 0; SHARDQ_ENOBUFS when more Events than @max_out (the first
 * @max_out are described, the rest only counted and not checked; *n_out is
 * the count needed); SHARDQ_EBADMSG; SHARDQ_EILSEQ; SHARDQ_EINVAL.
 * Thread-safety: pure.
 */
int shardq_pb_events(const void *msg, size_t len, uint32_t field,
                     struct shardq_event_spans *out, size_t max_out, size_t *n_out);

/**
 * shardq_pb_event - describe one encoded Event (the whole of @msg).
 * Same checks and codes as shardq_pb_events(); event_off is 0.
 * Thread-safety: pure.
 */
int shardq_pb_event(const void *msg, size_t len, struct shardq_event_spans *out);

/* ======================================================================== */
/* Publishing: accepting a request's Events and staging log records          */
/* ======================================================================== */

/* Why shardq_pb_accept() refused an Event. Append-only. The order of the
 * checks is fixed (the server's pure-Python validator follows it): wire
 * data and UTF-8 first (headers included, in field order), then the
 * publish_time range, topic, payload, priority, id, key, header count and
 * the Event's size. */
#define SHARDQ_EVENT_OK 0
#define SHARDQ_EVENT_MALFORMED 1          /* not well-formed wire data, or a field of the wrong type */
#define SHARDQ_EVENT_ID_NOT_UTF8 2
#define SHARDQ_EVENT_TOPIC_NOT_UTF8 3
#define SHARDQ_EVENT_KEY_NOT_UTF8 4
#define SHARDQ_EVENT_TOPIC_EMPTY 5
#define SHARDQ_EVENT_TOPIC_WILDCARD 6
#define SHARDQ_EVENT_TOPIC_EMPTY_LEVEL 7
#define SHARDQ_EVENT_TOPIC_TOO_LONG 8     /* bytes > max_topic */
#define SHARDQ_EVENT_PAYLOAD_TOO_LARGE 9  /* bytes > max_payload */
#define SHARDQ_EVENT_PRIORITY_UNKNOWN 10  /* priority outside 0..5 */
#define SHARDQ_EVENT_ID_TOO_LONG 11       /* bytes > max_id */
#define SHARDQ_EVENT_KEY_TOO_LONG 12      /* bytes > max_key */
#define SHARDQ_EVENT_TOO_MANY_HEADERS 13  /* header entries > max_headers */
#define SHARDQ_EVENT_TOO_LARGE 14         /* the Event's bytes as sent > max_event */
#define SHARDQ_EVENT_HEADER_NOT_UTF8 15   /* a header key or value is not UTF-8 */
#define SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE 16 /* publish_time outside a protobuf Timestamp's
                                                     range (0001-01-01..9999-12-31, nanos
                                                     0..999999999) */
/* shardq_frames_accept(): a frame refused with SHARDQ_FRAME_<reason> gets
 * SHARDQ_EVENT_FRAME_BASE + reason. */
#define SHARDQ_EVENT_FRAME_BASE 64

/* Limits checked by shardq_pb_accept(); set size = sizeof(struct). A caller
 * whose struct ends before max_event gets no Event size limit. */
struct shardq_accept_limits {
    uint32_t size;
    uint32_t max_topic, max_payload, max_id, max_key, max_headers;
    uint32_t max_event;           /* largest Event in bytes as sent, all fields; 0 = no limit */
};

/*
 * One Event of a request as shardq_pb_accept() found it. For an accepted
 * Event, body_off/len locate its cleaned copy in the bodies buffer and the id and topic spans
 * are relative to that body; for a refused one, body_off/len locate the Event as
 * sent, in the request, and the other spans are 0.
 */
struct shardq_accepted {
    uint32_t index;               /* position of the Event in the request */
    uint32_t reason;              /* SHARDQ_EVENT_* */
    uint32_t body_off, body_len;
    uint32_t id_off, id_len;      /* id_len 0: the server assigns one */
    uint32_t topic_off, topic_len;
    uint32_t hash;                /* shardq_hash(key, topic): the partition hash */
    uint32_t priority;            /* frame byte 0 (BATCH) .. 4 (CRITICAL) */
};

/**
 * shardq_pb_accept - validate and copy the Events of a publish request.
 * @msg/@len:     the encoded request (at most UINT32_MAX bytes).
 * @field:        the Event field: 1 in PublishRequest and PublishBatchRequest,
 *                2 in PublishStreamRequest.
 * @varint_field: 0, or a varint field whose last value goes to @varint_value
 *                (1: PublishStreamRequest.sequence).
 * @limits:       what an Event may hold.
 * @rows:         output, one per Event; @max_rows entries.
 * @n_rows:       receives the number of Events (also on SHARDQ_ENOBUFS).
 * @bodies:       output: accepted Events back to back, each without the
 *                fields the server sets (ingest_time, partition, offset)
 *                and with its priority as the last field (an unspecified
 *                priority becomes MEDIUM). Needs @len + 2 * events bytes.
 * @bodies_len:   receives the bytes written to @bodies.
 * @counts:       receives [realtime accepted, batch accepted, refused]. The
 *                rows come in that order: accepted HIGH/CRITICAL Events,
 *                then the other accepted ones, then the refused ones, each
 *                group in request order.
 *
 * An Event is refused (SHARDQ_EVENT_*) unless every field a client decodes
 * would decode: known fields of their declared wire type, id/topic/key and
 * every header key and value UTF-8, header entries and both timestamps
 * well-formed with varint seconds/nanos, publish_time (its occurrences merged,
 * the last value of each field winning, as protobuf decodes it) inside the
 * Timestamp range; then the limits. Unknown fields are kept as they came; a
 * header key sent twice is kept twice (decoders keep the last value).
 *
 * Returns: 0; SHARDQ_EBADMSG when the request itself is malformed (nothing
 * accepted); SHARDQ_ENOBUFS when @rows or @bodies is too small (*n_rows is
 * the count needed); SHARDQ_ENOMEM; SHARDQ_EINVAL.
 * Thread-safety: pure.
 */
int shardq_pb_accept(const void *msg, size_t len, uint32_t field, uint32_t varint_field,
                     const struct shardq_accept_limits *limits, struct shardq_accepted *rows,
                     size_t max_rows, size_t *n_rows, void *bodies, size_t bodies_cap,
                     size_t *bodies_len, uint32_t counts[3], uint64_t *varint_value);

/**
 * shardq_frames_accept - validate raw TCP/UDP frames and encode them as Events.
 * @buf/@len:   received bytes (at most UINT32_MAX).
 * @max_frame, @flags: as for shardq_frame_parse().
 * @limits:     max_topic and max_payload apply (the rest cannot occur).
 * @rows, @max_rows, @n_rows, @bodies, @bodies_cap, @bodies_len, @counts:
 *              as for shardq_pb_accept(), one row per complete frame: an
 *              accepted frame becomes an Event {topic, payload, priority =
 *              frame byte + 1} in @bodies; a refused one keeps its place in
 *              @buf and its reason (SHARDQ_EVENT_FRAME_BASE + frame reason, or
 *              TOPIC_TOO_LONG / PAYLOAD_TOO_LARGE). @max_rows >= @len / 7 + 1,
 *              @bodies_cap >= 2 * @len + 16.
 * @consumed:   bytes covered by the rows: a stream reader keeps buf[consumed:].
 * @fatal:      SHARDQ_FRAME_OK, or TRUNCATED / TOO_LONG when the walk stopped at
 *              a frame that breaks the framing (not counted in @consumed).
 *
 * Returns: 0; SHARDQ_ENOBUFS; SHARDQ_ENOMEM; SHARDQ_EINVAL.
 * Thread-safety: pure.
 */
int shardq_frames_accept(const void *buf, size_t len, uint32_t max_frame, uint32_t flags,
                         const struct shardq_accept_limits *limits, struct shardq_accepted *rows,
                         size_t max_rows, size_t *n_rows, void *bodies, size_t bodies_cap,
                         size_t *bodies_len, uint32_t counts[3], size_t *consumed, uint32_t *fatal);

/**
 * shardq_datagrams_accept - validate a batch of datagrams of raw frames, each
 * accepted whole or not at all, and encode the good frames as Events.
 * @buf/@len:   a record batch (u32 big-endian length + datagram, as a queue
 *              pops them and the UDP receiver pushes them), at most UINT32_MAX.
 * @max_frame:  largest allowed declared frame length.
 * @limits:     as for shardq_frames_accept().
 * @rows, @max_rows, @n_rows, @bodies, @bodies_cap, @bodies_len, @counts:
 *              as for shardq_frames_accept(), with one row per frame of a good
 *              datagram (index = the datagram's position in the batch) and one
 *              refused row per bad datagram: index = its position, reason = its
 *              first bad frame's (SHARDQ_EVENT_FRAME_BASE + frame reason, or
 *              TOPIC_TOO_LONG / PAYLOAD_TOO_LARGE), body_off/body_len = that
 *              frame in @buf (cut at the datagram's end), id_off = the good
 *              frames before it (dropped with it).
 *              @max_rows >= @len / 4 + 1, @bodies_cap >= 2 * @len + 16.
 *
 * Returns: 0; SHARDQ_EBADMSG when @buf is not a record batch (nothing
 * accepted); SHARDQ_ENOBUFS; SHARDQ_ENOMEM; SHARDQ_EINVAL.
 * Thread-safety: pure.
 */
int shardq_datagrams_accept(const void *buf, size_t len, uint32_t max_frame,
                            const struct shardq_accept_limits *limits,
                            struct shardq_accepted *rows, size_t max_rows, size_t *n_rows,
                            void *bodies, size_t bodies_cap, size_t *bodies_len,
                            uint32_t counts[3]);

#define SHARDQ_ID_PREFIX_MAX 32        /* longest prefix of server-assigned ids */
#define SHARDQ_RECORD_MAX_OVERHEAD 64  /* bytes a record adds to its body, besides a generated id */
#define SHARDQ_ACK_MAX_OVERHEAD 96     /* bytes of an encoded result besides its id */

/* Inputs of shardq_stage(); set size = sizeof(struct). */
struct shardq_stage_args {
    uint32_t size;
    uint32_t partitions;      /* > 0 */
    int64_t time_ns;          /* ingest time of the round (>= 0) */
    uint32_t durability;      /* eventstream.v1.Durability written in each ack */
    uint32_t result_tag;      /* 0, or the tag byte wrapping each PublishResult */
    uint64_t id_counter;      /* in/out: the last number given to a server id */
    uint32_t id_prefix_len;   /* <= SHARDQ_ID_PREFIX_MAX */
    uint8_t id_prefix[SHARDQ_ID_PREFIX_MAX];
    uint32_t flags;           /* 0, or SHARDQ_RECORDS_STORED */
};

/* shardq_stage_args.flags / shardq_entry_source.flags: the records are in
 * their stored form, segment records (see SHARDQ_SEGMENT_HEADER) with offset,
 * time and CRC32C set, so shardq_entry_encode() copies whole runs of them. */
#define SHARDQ_RECORDS_STORED 1u

/* A row's de-duplication verdict. partition >= 0: a duplicate of that
 * committed event (offset, time_ns); -1: new; -2 - j: a duplicate of row j
 * (j before this row, itself new) of the same call. */
struct shardq_dup {
    int64_t partition, offset, time_ns;
};

/* Outputs of shardq_stage(): the caller provides every array; set size. */
struct shardq_staged {
    uint32_t size;
    uint32_t reserved;
    uint8_t *records;             /* records, framed as SubscribeResponse.events */
    size_t records_cap, records_len;
    uint32_t *record_ends;        /* one per record: end of it in @records */
    uint32_t *record_topics;      /* two per record: topic offset in @records, length */
    uint8_t *record_priorities;   /* one per record: frame byte */
    uint32_t *part_counts;        /* one per partition: its records, in partition order */
    size_t record_count;
    uint64_t *row_positions;      /* two per row: partition, offset */
    uint8_t *results;             /* one encoded PublishResult per row, in row order */
    size_t results_cap, results_len;
};

/**
 * shardq_stage - turn accepted rows into log records and acknowledgements.
 * @a:            the round's parameters; a->id_counter is advanced.
 * @bodies/@bodies_len, @rows/@n: as filled by shardq_pb_accept() (accepted
 *                rows only).
 * @dups:         NULL (all new) or one verdict per row.
 * @next_offsets: one per partition, in/out: the next offset to assign.
 * @out:          where records and results go. Records are grouped by
 *                partition (partition 0's first, each in row order) so each
 *                partition's run can be appended at once; results are in
 *                row order, each PublishResult{ack} optionally wrapped in
 *                a->result_tag (PublishBatchResponse.results = 0x0a,
 *                PublishStreamResponse.results = 0x12; with 0 a result is
 *                also a valid PublishResponse).
 *
 * A new row gets partition hash % partitions and that partition's next
 * offset; a record is its body followed by the generated id (when the
 * producer gave none: id_prefix + lowercase hex of the counter), the ingest
 * time, the partition and the offset. With a->flags SHARDQ_RECORDS_STORED
 * each record is written in its stored form instead: a segment record
 * (header with the record's offset, a->time_ns and priority, the topic, that
 * record as its body, CRC32C), what shardq_entry_encode() writes, so the
 * round's entry copies runs of them whole; record_topics then point at the
 * topic after each header. Capacities: records_cap >= sum of (body_len + id +
 * SHARDQ_RECORD_MAX_OVERHEAD), plus SHARDQ_SEGMENT_HEADER + topic_len per
 * row when stored; results_cap >= sum of (id + SHARDQ_ACK_MAX_OVERHEAD),
 * where id is id_len or SHARDQ_ID_PREFIX_MAX + 16.
 *
 * Returns: 0; SHARDQ_ENOBUFS (nothing written, nothing advanced;
 * out->records_len and out->results_len say the room needed);
 * SHARDQ_ENOMEM; SHARDQ_EINVAL (bad arguments or rows).
 * Thread-safety: pure apart from the in/out arguments.
 */
int shardq_stage(struct shardq_stage_args *a, const void *bodies, size_t bodies_len,
                 const struct shardq_accepted *rows, size_t n, const struct shardq_dup *dups,
                 uint64_t *next_offsets, struct shardq_staged *out);

/* ======================================================================== */
/* Segment records                                                          */
/* ======================================================================== */

/* Size of a segment record's header: u32 length, u32 crc32c, u64 offset,
 * i64 time_ns, u8 priority, u16 topic_len (little-endian), then the topic
 * and the log record (the durable log's format, FORMAT_VERSION 1). */
#define SHARDQ_SEGMENT_HEADER 27

/* In/out state of shardq_segment_encode(); set size = sizeof(struct). */
struct shardq_segment_args {
    uint32_t size;
    uint32_t index_interval;        /* bytes between sparse index entries */
    /* The log records, as shardq_stage() produced them (in). */
    const uint8_t *records;
    size_t records_len;
    size_t records_start;           /* where record 0 begins in @records */
    const uint32_t *record_ends;     /* one per record: end of it in @records */
    const uint8_t *topic_data;      /* what @record_topics index (may be @records) */
    size_t topic_data_len;
    const uint32_t *record_topics;   /* two per record: topic offset, length */
    const uint8_t *record_priorities; /* one per record */
    size_t record_count;
    size_t next_record;             /* in/out: the first record still to encode */
    int64_t time_ns;                /* ingest time of every record */
    /* The active segment (in/out). */
    uint64_t base;                  /* in: offset of its first record */
    uint64_t next_offset;           /* the offset the next record gets */
    uint64_t position;              /* its size in bytes, staged records included */
    uint64_t last_position;         /* position of its newest record */
    uint64_t sample_at;             /* position from which the next record is indexed */
    uint64_t roll_at;               /* stop before a record once position >= roll_at
                                       (unless the segment is empty) */
    /* Output. */
    uint8_t *out;                   /* segment records are appended at out + out_len */
    size_t out_cap, out_len;        /* out_len in/out */
    uint32_t *index;                /* two per entry: offset - base, position */
    size_t index_cap, index_len;    /* in entries; index_len in/out */
};

/**
 * shardq_segment_encode - encode log records as segment records, CRC included.
 * @a: the records, the active segment's counters and the output buffers.
 *
 * Encodes records from a->next_record on: each gets a->next_offset (then
 * incremented) and a->time_ns, its CRC32C, and an index entry when it starts
 * at or past a->sample_at (then a->sample_at = its position +
 * a->index_interval). Stops when every record is encoded, before a record
 * once a->position >= a->roll_at and the segment holds a record (the caller
 * starts the next segment and calls again), or before a record that does
 * not fit @out or @index (the caller makes room and calls again). Every
 * counter describes exactly what was written.
 *
 * Returns: 0 (all encoded, or stopped to roll); SHARDQ_ENOBUFS (stopped for
 * room in @out or @index); SHARDQ_EINVAL (bad arguments, a record end before
 * its start or past @records_len, a topic span outside @topic_data or longer
 * than 65535 bytes, a position past 4 GiB).
 * Ownership: every buffer is borrowed. Thread-safety: pure apart from @a and
 * the output buffers.
 */
int shardq_segment_encode(struct shardq_segment_args *a);

/* Size of an entry's header in the entry log: u32 length, u32 crc32c,
 * u64 index, u64 term, u8 kind (little-endian); the payload follows. */
#define SHARDQ_ENTRY_HEADER 25
/* Kind of an entry holding a commit round's records (append-only values). */
#define SHARDQ_ENTRY_EVENTS 1u
/* Size of the head of one partition's group in an EVENTS payload:
 * u32 partition, u32 record count, u32 bytes of the records that follow. */
#define SHARDQ_ENTRY_GROUP_HEADER 12
/* int64 values per block row of shardq_entry_encode(): partition, first
 * offset, record count, position of the first record (from the entry's
 * start), bytes of the records, time. */
#define SHARDQ_ENTRY_BLOCK_FIELDS 6

/* One submission's staged records: a run per partition, partition 0's
 * first, as shardq_stage() produced them. */
struct shardq_entry_source {
    const uint8_t *records;          /* the records back to back */
    size_t records_len;
    const uint32_t *record_ends;     /* one per record: its end in @records
                                        (record 0 starts at 0) */
    const uint32_t *record_topics;   /* two per record: topic offset in
                                        @records, topic length */
    const uint8_t *record_priorities; /* one per record */
    const uint32_t *part_counts;     /* one per partition: its records */
    size_t record_count;
    uint32_t flags;                  /* 0, or SHARDQ_RECORDS_STORED: the records
                                        are stored segment records already */
};

/* In/out state of shardq_entry_encode(); set size = sizeof(struct). */
struct shardq_entry_args {
    uint32_t size;
    uint32_t partitions;             /* entries of @next_offsets and of each part_counts */
    uint64_t index;                  /* the entry's index and term */
    uint64_t term;
    int64_t time_ns;                 /* ingest time of every record */
    const struct shardq_entry_source *sources;
    size_t source_count;
    uint64_t *next_offsets;          /* in/out: each partition's next offset */
    uint8_t *out;                    /* the entry is written at out[0] */
    size_t out_cap;
    size_t out_len;                  /* out: the entry's size (or the size
                                        needed, with SHARDQ_ENOBUFS) */
    int64_t *blocks;                 /* out: SHARDQ_ENTRY_BLOCK_FIELDS per block */
    size_t blocks_cap;               /* rows @blocks holds (partitions is enough) */
    size_t block_count;              /* out: rows written */
};

/**
 * shardq_entry_encode - encode a commit round as one EVENTS entry of the entry log.
 * @a: the round's submissions, the partitions' next offsets and the output.
 *
 * Writes the entry header (length, CRC32C, index, term, SHARDQ_ENTRY_EVENTS)
 * and, for each partition with records in any source (in increasing
 * order), a group head and its records in the segment record format
 * (see shardq_segment_encode(); the sources' records of that partition in
 * source order, offsets from next_offsets[p] on, time a->time_ns), then
 * advances next_offsets and describes each partition's block in @blocks.
 * One call per round, whatever the number of submissions and partitions.
 * A source flagged SHARDQ_RECORDS_STORED holds segment records already
 * (shardq_stage() with that flag): each partition's run of them is copied
 * whole, after checking that each record's length field fits its span and
 * its offset and time are the ones this call would give it.
 *
 * Returns: 0; SHARDQ_ENOBUFS when @out or @blocks is too small (nothing
 * written or advanced; a->out_len says how many bytes the entry needs);
 * SHARDQ_ENOMEM; SHARDQ_EINVAL (bad arguments, part_counts not adding up to record_count,
 * a record end before its start or past records_len, a topic span outside
 * the records or longer than 65535 bytes, an entry over 4 GiB, a stored
 * record whose length, offset or time does not fit; nothing written then).
 * Ownership: every buffer is borrowed. Thread-safety: pure apart from @a,
 * @next_offsets and the output buffers.
 */
int shardq_entry_encode(struct shardq_entry_args *a);

/* int64 values per id row of shardq_entry_scan(): partition, offset, position
 * of the id in the payload, its length. */
#define SHARDQ_ENTRY_ID_FIELDS 4

/**
 * shardq_entry_scan - describe an EVENTS payload: its blocks and the ids producers chose.
 * @payload/@len: the payload of an EVENTS entry (the bytes after its header):
 *              groups of segment records (see shardq_entry_encode()).
 * @partitions: partitions of the log (group partitions must be below it); 0: any.
 * @blocks, @max_blocks, @n_blocks: out: SHARDQ_ENTRY_BLOCK_FIELDS int64 per
 *              group, as shardq_entry_encode() gives them (positions from the
 *              payload's start, the time of the group's first record).
 * @ids, @max_ids, @n_ids: out: SHARDQ_ENTRY_ID_FIELDS int64 per record whose
 *              event carries an id its producer chose, in payload order. An
 *              event's id is its last field 1 (protobuf's rule); ids of the
 *              form the server makes (16 lowercase hex digits, '-', lowercase
 *              hex digits) and empty ones are left out.
 *
 * Checks the structure, not the CRCs (the log checked them): groups in
 * increasing partition order, each holding exactly its count of records
 * with consecutive offsets, each record's event framed as field 1 of a
 * delivery message and well-formed on the wire. *n_blocks and *n_ids are
 * set to the totals even when the arrays are too small.
 *
 * Returns: 0; SHARDQ_ENOBUFS (an array too small: call again with room for
 * the totals); SHARDQ_EBADMSG (bad structure); SHARDQ_EINVAL.
 * Ownership: every buffer is borrowed. Thread-safety: pure.
 */
int shardq_entry_scan(const void *payload, size_t len, uint32_t partitions, int64_t *blocks,
                      size_t max_blocks, size_t *n_blocks, int64_t *ids, size_t max_ids,
                      size_t *n_ids);

/**
 * shardq_entry_check - shardq_entry_scan() that also checks each record's CRC32C.
 *
 * For a payload from a peer (a follower's append): one pass checks what
 * storing it needs (records tiling each group, their CRCs) and lists what
 * applying it needs (blocks, producer-chosen ids). Arguments, results and
 * ownership as shardq_entry_scan(); a record whose CRC does not match is
 * SHARDQ_EBADMSG.
 */
int shardq_entry_check(const void *payload, size_t len, uint32_t partitions, int64_t *blocks,
                       size_t max_blocks, size_t *n_blocks, int64_t *ids, size_t max_ids,
                       size_t *n_ids);

/* ======================================================================== */
/* De-duplication table                                                     */
/* ======================================================================== */

/* Opaque: the producer ids a node remembers, one table per node (dedup.c). */
typedef struct shardq_dedup shardq_dedup_t;

/* Longest id the table takes (the snapshot stores its length as a u16). */
#define SHARDQ_DEDUP_ID_MAX 65535u

/*
 * The table maps an id's bytes to up to two parts:
 *   - the *window* part (partition, offset, time): ids of applied entries,
 *     in the order they were remembered, forgotten oldest first beyond
 *     max_ids and once older than window_ns (shardq_dedup_expire()). It is
 *     a function of the entries applied only, so every node that applied
 *     the same entries holds the same window (shardq_dedup_encode());
 *   - the *in-flight* part (partition, offset, time, entry index): ids of
 *     rounds the leader sequenced and did not apply yet, in entry order.
 * Times are passed in; nothing reads a clock. Memory: one allocation per
 * id (about 120 bytes plus the id), freed when it has neither part.
 * Thread-safety: none; one thread uses a table at a time.
 */

/**
 * shardq_dedup_create - an empty table.
 * @window_ns: how long an id is remembered (>= 0).
 * @max_ids:   most ids remembered. With either 0, applied ids are not
 *             remembered (in-flight ids still are).
 * Returns: 0; SHARDQ_EINVAL; SHARDQ_ENOMEM. Ownership: the caller ends it
 * with shardq_dedup_destroy().
 */
int shardq_dedup_create(int64_t window_ns, uint64_t max_ids, shardq_dedup_t **out);

/* shardq_dedup_destroy - free the table (NULL: no-op). */
void shardq_dedup_destroy(shardq_dedup_t *t);

/**
 * shardq_dedup_counts - @counts receives [ids in the window, ids in flight,
 * bytes shardq_dedup_encode() writes]. Returns: 0; SHARDQ_EINVAL.
 */
int shardq_dedup_counts(const shardq_dedup_t *t, uint64_t counts[3]);

/**
 * shardq_dedup_lookup - where the first event with this id went, if its
 * window part is still inside the window at @now_ns (time >= now - window).
 * @hit: receives partition, offset, time.
 * Returns: 1 (hit); 0 (miss); SHARDQ_EINVAL (an id over SHARDQ_DEDUP_ID_MAX).
 */
int shardq_dedup_lookup(const shardq_dedup_t *t, const void *id, size_t len, int64_t now_ns,
                        int64_t hit[3]);

/**
 * shardq_dedup_check - which accepted events of one submission repeat an id.
 * @bodies/@bodies_len, @rows/@n: accepted rows (shardq_pb_accept()); a row
 *             with id_len 0 carries no producer id.
 * @now_ns:    the round's time (the window part's age is measured to it).
 * @verdicts:  out: one per row, as shardq_stage() takes them: the in-flight
 *             part's position if the id has one, else the window part's if
 *             inside the window, else -2 - j when row j of this call (itself
 *             new) has the same id, else new (-1).
 * @counts:    receives [rows that are not new (usually 0: then @verdicts
 *             need not be passed on), rows with an id (0: nothing to hold)].
 * Returns: 0; SHARDQ_EINVAL (an id outside @bodies or over
 * SHARDQ_DEDUP_ID_MAX); SHARDQ_ENOMEM. Nothing in the table changes.
 */
int shardq_dedup_check(shardq_dedup_t *t, const void *bodies, size_t bodies_len,
                       const struct shardq_accepted *rows, size_t n, int64_t now_ns,
                       struct shardq_dup *verdicts, size_t counts[2]);

/**
 * shardq_dedup_hold - put the new ids of a placed submission in flight.
 * @bodies, @rows, @n: as for shardq_dedup_check().
 * @verdicts:  its verdicts (NULL: every row is new); rows not new are skipped.
 * @positions: two per row, partition and offset (shardq_stage()'s row_positions).
 * @time_ns, @index: the round's time and entry index (not below the index
 *             of an id already in flight).
 * Returns: 0; SHARDQ_EINVAL; SHARDQ_ENOMEM (some ids held).
 */
int shardq_dedup_hold(shardq_dedup_t *t, const void *bodies, size_t bodies_len,
                      const struct shardq_accepted *rows, size_t n, const struct shardq_dup *verdicts,
                      const uint64_t *positions, int64_t time_ns, uint64_t index);

/**
 * shardq_dedup_hold_ids - put ids in flight from id rows of one entry.
 * @buf/@len:  the bytes the rows point into.
 * @ids/@n:    SHARDQ_ENTRY_ID_FIELDS int64 per id (partition, offset,
 *             position in @buf, length), as shardq_entry_scan() gives them.
 * @time_ns, @index: as for shardq_dedup_hold().
 * Returns: 0; SHARDQ_EINVAL (a row outside @buf, an id over
 * SHARDQ_DEDUP_ID_MAX, a negative partition or offset: nothing held);
 * SHARDQ_ENOMEM.
 */
int shardq_dedup_hold_ids(shardq_dedup_t *t, const void *buf, size_t len, const int64_t *ids,
                          size_t n, int64_t time_ns, uint64_t index);

/**
 * shardq_dedup_release - take ids out of flight: those held for entries up
 * to @through (0: none) and those held for entries from @from on
 * (UINT64_MAX: none; a round that was not proposed).
 * Returns: 0; SHARDQ_EINVAL.
 */
int shardq_dedup_release(shardq_dedup_t *t, uint64_t through, uint64_t from);

/**
 * shardq_dedup_promote - the entry at @index, sequenced here, was applied:
 * its in-flight ids go into the window with @time_ns, in the entry's order
 * (partition, then offset), leaving out the ids of the server's form (as
 * shardq_entry_scan() does), so the window is the one a scan of the entry
 * gives. They leave the flight.
 * Returns: 0; SHARDQ_EINVAL; SHARDQ_ENOMEM (nothing changed).
 */
int shardq_dedup_promote(shardq_dedup_t *t, uint64_t index, int64_t time_ns);

/**
 * shardq_dedup_remember - put an applied entry's ids into the window.
 * @buf, @len, @ids, @n: as for shardq_dedup_hold_ids() (a scan's rows).
 * @time_ns:   the entry's ingest time.
 * An id already in the window takes the new position and becomes the youngest.
 * Returns: 0; SHARDQ_EINVAL (nothing remembered); SHARDQ_ENOMEM.
 */
int shardq_dedup_remember(shardq_dedup_t *t, const void *buf, size_t len, const int64_t *ids,
                          size_t n, int64_t time_ns);

/**
 * shardq_dedup_expire - forget the oldest window ids beyond max_ids, then
 * those older than @now_ns - window_ns. Returns: 0; SHARDQ_EINVAL.
 */
int shardq_dedup_expire(shardq_dedup_t *t, int64_t now_ns);

/**
 * shardq_dedup_encode - the window, oldest first: u32 count, then per id
 * u16 length, u32 partition, u64 offset, i64 time (little-endian), its bytes.
 * The same bytes for the same window on every node.
 * @out_len:   receives the size (also with SHARDQ_ENOBUFS).
 * Returns: 0; SHARDQ_ENOBUFS; SHARDQ_EINVAL.
 */
int shardq_dedup_encode(const shardq_dedup_t *t, void *out, size_t cap, size_t *out_len);

/**
 * shardq_dedup_restore - replace the window by one shardq_dedup_encode()
 * made (an id twice keeps its first place and its last value). The
 * in-flight ids stay.
 * Returns: 0; SHARDQ_EBADMSG (cut short or followed by other bytes: the
 * window is unchanged); SHARDQ_ENOMEM (the window is left empty); SHARDQ_EINVAL.
 */
int shardq_dedup_restore(shardq_dedup_t *t, const void *data, size_t len);

/* ======================================================================== */
/* CRC32C and hashing                                                       */
/* ======================================================================== */

/**
 * shardq_crc32c - CRC32C (Castagnoli, reflected 0x82F63B78, as in iSCSI).
 * @crc: 0 to start, or a previous result to continue over more bytes.
 * @buf/@len: the bytes.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (see
 * shardq_features()), a table otherwise; both give the same results.
 * Returns: the CRC; crc32c("123456789") == 0xE3069283.
 * Thread-safety: pure.
 */
uint32_t shardq_crc32c(uint32_t crc, const void *buf, size_t len);

/* Flag of shardq_crc32c_records: compute and store each CRC instead of checking it. */
#define SHARDQ_CRC_FILL 1u

/**
 * shardq_crc32c_records - fill in or check the CRC32C of length-prefixed records.
 * @buf/@len: records back to back, each `u32 length` (little-endian: the bytes
 *            that follow it), `u32 crc` (little-endian) and `length - 4` bytes
 *            the CRC covers (the durable log's segment record format).
 * @min_len:  smallest valid length field (at least 4).
 * @flags:    SHARDQ_CRC_FILL to write each record's CRC into its crc field;
 *            0 to check each one.
 * @end:      receives the position where the walk stopped: just past the last
 *            whole record that passed, or the start of the offending record.
 *
 * One call per batch instead of one per record. The walk stops without error
 * at a record that runs past @len (fewer than 8 bytes left, or a length
 * beyond the end): the caller decides whether that is a torn tail or a read
 * that needs more bytes.
 * Returns: SHARDQ_OK; SHARDQ_EBADMSG when a length field is below @min_len or
 * (checking) a CRC differs, *end = that record's position; SHARDQ_EINVAL for a
 * NULL @buf with @len > 0, a NULL @end, @min_len < 4 or an unknown flag.
 * Ownership: @buf is borrowed; written only with SHARDQ_CRC_FILL (crc fields).
 * Thread-safety: pure (callers must not share a @buf being filled).
 */
int shardq_crc32c_records(void *buf, size_t len, size_t min_len, uint32_t flags, size_t *end);

/**
 * shardq_hash - the partition/shard hash of an event.
 *
 * CRC32C of the key bytes, or of the topic bytes when the key is empty.
 * The server picks partition = shardq_hash(...) % partitions, so the
 * function is fixed: changing it moves keys between partitions.
 * Returns: the hash. Thread-safety: pure.
 */
uint32_t shardq_hash(const void *key, size_t key_len, const void *topic, size_t topic_len);

/* ======================================================================== */
/* NUMA                                                                     */
/* ======================================================================== */

/**
 * shardq_numa_nodes - list the online NUMA nodes.
 * @sysfs_root: root holding devices/system/node (tests pass a fixture
 *              tree); NULL means "/sys".
 * @nodes:      output node ids, ascending; @max entries.
 * @n_nodes:    receives the number of nodes (all of them, even beyond @max).
 *
 * Reads devices/system/node/online; without it, lists nodeN directories;
 * without those (kernel without NUMA), reports the single node 0.
 *
 * Returns: 0; SHARDQ_ENOBUFS when more than @max nodes (the first @max are
 * written); SHARDQ_EBADMSG for an unparsable list; SHARDQ_EINVAL.
 * Thread-safety: safe from any thread (reads files only).
 */
int shardq_numa_nodes(const char *sysfs_root, int32_t *nodes, size_t max, size_t *n_nodes);

/**
 * shardq_numa_node_cpus - list the CPUs of one node.
 * @sysfs_root: as above.
 * @node:       node id.
 * @cpus/@max:  output CPU ids, ascending.
 * @n_cpus:     receives the number of CPUs (all of them).
 *
 * Reads devices/system/node/node<N>/cpulist; for node 0 on a kernel without
 * NUMA, devices/system/cpu/online.
 *
 * Returns: 0; SHARDQ_ENOENT for an unknown node; SHARDQ_ENOBUFS;
 * SHARDQ_EBADMSG; SHARDQ_EINVAL.
 * Thread-safety: safe from any thread.
 */
int shardq_numa_node_cpus(const char *sysfs_root, int32_t node, int32_t *cpus, size_t max,
                          size_t *n_cpus);

/**
 * shardq_numa_pin_thread - restrict the calling thread to a node's CPUs.
 * @sysfs_root: as above.
 * @node:       node id.
 *
 * Returns: 0; SHARDQ_ENOENT for an unknown node; SHARDQ_EINVAL when the
 * node has no CPU this machine can run on; another negative errno from
 * sched_setaffinity.
 * Thread-safety: affects the calling thread only.
 */
int shardq_numa_pin_thread(const char *sysfs_root, int32_t node);

/* ======================================================================== */
/* UDP receiver                                                             */
/* ======================================================================== */

/* Opaque: a thread that reads datagrams from a socket into a queue. */
typedef struct shardq_udp shardq_udp_t;

/* Options for shardq_udp_start(). Set `size` to sizeof(struct). */
struct shardq_udp_options {
    uint32_t size;
    int32_t fd;             /* a bound datagram socket; the caller keeps owning it */
    uint32_t shard;         /* the queue shard the datagrams go to (not SHARDQ_SHARD_ANY) */
    uint32_t batch;         /* datagrams per recvmmsg(2), 1..1024; 0 = 64 */
    uint32_t max_datagram;  /* bytes read per datagram, <= 65535; 0 = 65535 */
    int32_t numa_node;      /* pin the thread to this node's CPUs; -1 = do not pin */
    /* Appended (callers whose `size` ends above leave them out: any source). */
    uint32_t n_networks;    /* entries of `networks`; 0 = datagrams from any source */
    const uint8_t *networks; /* SHARDQ_UDP_NETWORK_BYTES each: family (4 or 6), prefix
                              * length, then the address (4 or 16 bytes, zero-padded to
                              * 16); copied by shardq_udp_start() */
};

/* Bytes of one entry of shardq_udp_options.networks. */
#define SHARDQ_UDP_NETWORK_BYTES 18u

/* Counters of a receiver. Set `size` to sizeof(struct). */
struct shardq_udp_stats {
    uint64_t size;
    uint64_t datagrams;   /* datagrams read from the socket */
    uint64_t bytes;       /* their bytes */
    uint64_t queue_full;  /* datagrams dropped because the shard had no room */
    uint64_t truncated;   /* datagrams dropped because they were over max_datagram */
    uint64_t errors;      /* failed receive calls, other than "nothing to read" */
    int64_t last_errno;   /* errno of the last failed call, 0 if none */
    /* Appended (written when `size` covers it). */
    uint64_t source_refused; /* datagrams dropped because their source is in no network */
};

/**
 * shardq_udp_start - start a thread that receives datagrams into a queue.
 * @opts: options (read only; not kept).
 * @q:    the queue; it must outlive the receiver.
 * @out:  receives the receiver.
 *
 * The thread waits in poll(2) on the socket, reads up to `batch` datagrams
 * per recvmmsg(2) and pushes each as one record (u32 big-endian length,
 * then the datagram) into `shard`, in arrival order, waking the queue's
 * consumer. Datagrams that do not fit are dropped and counted (queue_full);
 * with `networks`, so are datagrams whose source address is in none of them
 * (source_refused; an IPv4-mapped IPv6 source is matched as IPv4).
 * The thread ends on shardq_udp_stop(), when the queue is closed, or when
 * the socket becomes unusable (EBADF and the like; see last_errno).
 *
 * Returns: 0; SHARDQ_EINVAL for bad options, shard or network entry; SHARDQ_ENOMEM;
 * another negative errno when the thread or its eventfd cannot be made.
 * Ownership: the caller owns *out and ends it with shardq_udp_stop(), before
 * closing the socket or destroying the queue.
 * Thread-safety: safe from any thread.
 */
int shardq_udp_start(const struct shardq_udp_options *opts, shardq_t *q, shardq_udp_t **out);

/**
 * shardq_udp_stats - read a receiver's counters.
 * Returns: 0; SHARDQ_EINVAL for a NULL argument or out->size below the
 * counters up to last_errno (later ones are written when out->size covers them).
 * Thread-safety: safe from any thread while the receiver runs.
 */
int shardq_udp_stats(shardq_udp_t *u, struct shardq_udp_stats *out);

/**
 * shardq_udp_stop - stop the thread, wait for it and free the receiver.
 * @u:     the receiver, or NULL (no-op).
 * @final: NULL, or receives the counters as the thread left them (set
 *         final->size first).
 *
 * Datagrams already pushed stay in the queue; the socket is left open.
 * Thread-safety: call once, from one thread.
 */
void shardq_udp_stop(shardq_udp_t *u, struct shardq_udp_stats *final);

#ifdef __cplusplus
}
#endif

#endif /* SHARDQ_H */
