/*
 * stage.c - the publish hot path: accept a request's Events, stage records.
 *
 * Pure. shardq_pb_accept() walks a publish request once: it validates every
 * Event against the limits and copies each accepted one, minus the fields
 * the server sets, into one buffer. shardq_stage() then turns accepted
 * Events into log records (the server's fields appended as wire bytes) and
 * encoded PublishAcks, so Python handles a batch as a few buffers instead
 * of an object per event.
 */
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

/* Event fields (common.proto). */
#define F_ID 1
#define F_TOPIC 2
#define F_KEY 3
#define F_PRIORITY 5
#define F_HEADERS 6
#define F_PUBLISH_TIME 7
#define F_INGEST_TIME 8
#define F_PARTITION 9
#define F_OFFSET 10

#define PRIORITY_MEDIUM 3 /* eventstream.v1.Priority; frame byte = value - 1 */
/* A google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
 * Clients' decoders refuse (or their date types cannot hold) anything outside it. */
#define TIMESTAMP_MIN_SECONDS (-62135596800LL)
#define TIMESTAMP_MAX_SECONDS 253402300799LL
#define TIMESTAMP_MAX_NANOS 999999999LL
#define FRAME_HIGH 3      /* frame bytes >= this ride the realtime lane */

static size_t put_varint(unsigned char *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* The size limit of @lim: 0 (none) when the caller's struct predates the field. */
static uint32_t max_event_of(const struct shardq_accept_limits *lim)
{
    size_t end = offsetof(struct shardq_accept_limits, max_event) + sizeof lim->max_event;
    return lim->size >= end ? lim->max_event : 0;
}

/* Smallest accepted size of struct shardq_accept_limits: the fields before max_event. */
#define ACCEPT_LIMITS_MIN_SIZE offsetof(struct shardq_accept_limits, max_event)

/* The refusal reason for an Event at e[0, len), or OK; fills the spans. */
static uint32_t check_event(const unsigned char *e, size_t len, const struct shardq_accept_limits *lim,
                            uint32_t max_event, struct shardq_accepted *row, int64_t *priority)
{
    size_t pos = 0, off, flen, id_off = 0, id_len = 0, topic_off = 0, topic_len = 0;
    size_t key_off = 0, key_len = 0, payload_len = 0, headers = 0;
    int64_t seconds = 0, nanos = 0;
    uint32_t field, wt;
    uint64_t v;
    int rc;
    *priority = 0;
    while (pos < len) {
        if (_shardq_pb_field(e, len, &pos, &field, &wt, &off, &flen, &v))
            return SHARDQ_EVENT_MALFORMED;
        switch (field) {
        case F_ID:
        case F_TOPIC:
        case F_KEY:
            if (wt != 2)
                return SHARDQ_EVENT_MALFORMED;
            if (!_shardq_utf8_valid(e + off, flen))
                return field == F_ID ? SHARDQ_EVENT_ID_NOT_UTF8
                                     : field == F_TOPIC ? SHARDQ_EVENT_TOPIC_NOT_UTF8
                                                        : SHARDQ_EVENT_KEY_NOT_UTF8;
            if (field == F_ID) {
                id_off = off;
                id_len = flen;
            } else if (field == F_TOPIC) {
                topic_off = off;
                topic_len = flen;
            } else {
                key_off = off;
                key_len = flen;
            }
            break;
        case 4:
            if (wt != 2)
                return SHARDQ_EVENT_MALFORMED;
            payload_len = flen;
            break;
        case F_PRIORITY:
        case F_PARTITION:
        case F_OFFSET:
            if (wt != 0)
                return SHARDQ_EVENT_MALFORMED;
            if (field == F_PRIORITY)
                *priority = (int64_t)(int32_t)(uint32_t)v;
            break;
        case F_HEADERS:
            if (wt != 2)
                return SHARDQ_EVENT_MALFORMED;
            rc = _shardq_pb_string_entry(e + off, flen);
            if (rc)
                return rc == SHARDQ_EILSEQ ? SHARDQ_EVENT_HEADER_NOT_UTF8 : SHARDQ_EVENT_MALFORMED;
            headers++;
            break;
        case F_PUBLISH_TIME:
            if (wt != 2 || _shardq_pb_timestamp(e + off, flen, &seconds, &nanos))
                return SHARDQ_EVENT_MALFORMED;
            break;
        case F_INGEST_TIME: /* the server's to set: dropped, only checked to be wire data */
            if (wt != 2 || _shardq_pb_wire_check(e + off, flen))
                return SHARDQ_EVENT_MALFORMED;
            break;
        default:
            break;
        }
    }
    /* Same order as the server's Python validator. */
    if (seconds < TIMESTAMP_MIN_SECONDS || seconds > TIMESTAMP_MAX_SECONDS || nanos < 0 ||
        nanos > TIMESTAMP_MAX_NANOS)
        return SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE;
    uint32_t topic = shardq_topic_check(e + topic_off, topic_len);
    if (topic == SHARDQ_FRAME_TOPIC_EMPTY)
        return SHARDQ_EVENT_TOPIC_EMPTY;
    if (topic == SHARDQ_FRAME_TOPIC_WILDCARD)
        return SHARDQ_EVENT_TOPIC_WILDCARD;
    if (topic == SHARDQ_FRAME_TOPIC_EMPTY_LEVEL)
        return SHARDQ_EVENT_TOPIC_EMPTY_LEVEL;
    if (topic_len > lim->max_topic)
        return SHARDQ_EVENT_TOPIC_TOO_LONG;
    if (payload_len > lim->max_payload)
        return SHARDQ_EVENT_PAYLOAD_TOO_LARGE;
    if (*priority < 0 || *priority > 5)
        return SHARDQ_EVENT_PRIORITY_UNKNOWN;
    if (id_len > lim->max_id)
        return SHARDQ_EVENT_ID_TOO_LONG;
    if (key_len > lim->max_key)
        return SHARDQ_EVENT_KEY_TOO_LONG;
    if (headers > lim->max_headers)
        return SHARDQ_EVENT_TOO_MANY_HEADERS;
    if (max_event && len > max_event)
        return SHARDQ_EVENT_TOO_LARGE;
    row->id_off = (uint32_t)id_off;
    row->id_len = (uint32_t)id_len;
    row->topic_off = (uint32_t)topic_off;
    row->topic_len = (uint32_t)topic_len;
    row->hash = shardq_hash(e + key_off, key_len, e + topic_off, topic_len);
    return SHARDQ_EVENT_OK;
}

/*
 * Copy the Event at e[0, len) to out without the server's fields (8, 9, 10)
 * and the producer's priority, then append the effective priority. Spans in
 * row are moved from e to out. Returns the bytes written.
 */
static size_t copy_cleaned(const unsigned char *e, size_t len, int64_t priority, unsigned char *out,
                           struct shardq_accepted *row)
{
    size_t pos = 0, w = 0, start, off, flen;
    uint32_t field, wt;
    uint64_t v;
    while (pos < len) {
        start = pos;
        _shardq_pb_field(e, len, &pos, &field, &wt, &off, &flen, &v); /* checked by check_event */
        if (field == F_PRIORITY || field == F_INGEST_TIME || field == F_PARTITION ||
            field == F_OFFSET)
            continue;
        /* Spans of the last occurrence win, as in check_event. */
        if (field == F_ID && off == row->id_off)
            row->id_off = (uint32_t)(w + (off - start));
        else if (field == F_TOPIC && off == row->topic_off)
            row->topic_off = (uint32_t)(w + (off - start));
        memcpy(out + w, e + start, pos - start);
        w += pos - start;
    }
    out[w++] = 0x28; /* field 5, varint */
    out[w++] = (unsigned char)(priority ? priority : PRIORITY_MEDIUM);
    return w;
}

/* Stable split of accepted rows: realtime rows, then batch rows, then the
 * refused ones (counts[0..2] of them), each group in its input order. */
static void split_by_lane(const struct shardq_accepted *scratch, size_t n, const uint32_t counts[3],
                          struct shardq_accepted *rows)
{
    size_t next[3] = {0, counts[0], (size_t)counts[0] + counts[1]};
    for (size_t i = 0; i < n; i++) {
        const struct shardq_accepted *row = &scratch[i];
        int group = row->reason != SHARDQ_EVENT_OK ? 2 : row->priority >= FRAME_HIGH ? 0 : 1;
        rows[next[group]++] = *row;
    }
}

int shardq_pb_accept(const void *msg, size_t len, uint32_t field, uint32_t varint_field,
                     const struct shardq_accept_limits *limits, struct shardq_accepted *rows,
                     size_t max_rows, size_t *n_rows, void *bodies, size_t bodies_cap,
                     size_t *bodies_len, uint32_t counts[3], uint64_t *varint_value)
{
    if (n_rows)
        *n_rows = 0;
    if (bodies_len)
        *bodies_len = 0;
    if ((msg == NULL && len != 0) || limits == NULL ||
        limits->size < ACCEPT_LIMITS_MIN_SIZE || n_rows == NULL ||
        (rows == NULL && max_rows != 0) || bodies_len == NULL || counts == NULL ||
        (bodies == NULL && bodies_cap != 0) || field == 0 || field > 0x1FFFFFFFu ||
        len > UINT32_MAX || (varint_field != 0 && varint_value == NULL))
        return SHARDQ_EINVAL;
    const unsigned char *p = msg;
    unsigned char *out = bodies;
    uint32_t max_event = max_event_of(limits);
    size_t pos = 0, n = 0, w = 0, off, flen;
    uint32_t f, wt;
    uint64_t v;
    counts[0] = counts[1] = counts[2] = 0;
    if (varint_field)
        *varint_value = 0;
    /* Pass 1: count and check the outer message; a malformed one is refused whole. */
    while (pos < len) {
        if (_shardq_pb_field(p, len, &pos, &f, &wt, &off, &flen, &v))
            return SHARDQ_EBADMSG;
        if (f == field) {
            if (wt != 2)
                return SHARDQ_EBADMSG;
            n++;
        } else if (f == varint_field) {
            if (wt != 0)
                return SHARDQ_EBADMSG;
            *varint_value = v;
        }
    }
    *n_rows = n;
    if (n > max_rows || bodies_cap < len + 2 * n)
        return SHARDQ_ENOBUFS;
    if (n == 0)
        return 0;
    struct shardq_accepted *scratch = malloc(n * sizeof *scratch);
    if (scratch == NULL)
        return SHARDQ_ENOMEM;
    /* Pass 2: check and copy each Event, in request order. */
    size_t index = 0;
    pos = 0;
    while (pos < len) {
        _shardq_pb_field(p, len, &pos, &f, &wt, &off, &flen, &v);
        if (f != field)
            continue;
        struct shardq_accepted *row = &scratch[index];
        int64_t priority;
        memset(row, 0, sizeof *row);
        row->index = (uint32_t)index++;
        row->reason = check_event(p + off, flen, limits, max_event, row, &priority);
        if (row->reason != SHARDQ_EVENT_OK) {
            row->body_off = (uint32_t)off; /* refused: the Event as sent, in msg */
            row->body_len = (uint32_t)flen;
            counts[2]++;
            continue;
        }
        row->priority = (uint32_t)((priority ? priority : PRIORITY_MEDIUM) - 1);
        row->body_off = (uint32_t)w;
        row->body_len = (uint32_t)copy_cleaned(p + off, flen, priority, out + w, row);
        w += row->body_len;
        counts[row->priority >= FRAME_HIGH ? 0 : 1]++;
    }
    split_by_lane(scratch, n, counts, rows);
    free(scratch);
    *bodies_len = w;
    return 0;
}

/* Encode a frame as an Event (topic, payload, priority) at out; fill the row. */
static size_t frame_event(const unsigned char *p, const struct shardq_frame *f, unsigned char *out,
                          struct shardq_accepted *row)
{
    size_t w = 0;
    out[w++] = 0x12; /* Event.topic */
    w += put_varint(out + w, f->topic_len);
    row->topic_off = (uint32_t)w;
    row->topic_len = f->topic_len;
    memcpy(out + w, p + f->topic_off, f->topic_len);
    w += f->topic_len;
    if (f->payload_len) {
        out[w++] = 0x22; /* Event.payload */
        w += put_varint(out + w, f->payload_len);
        memcpy(out + w, p + f->payload_off, f->payload_len);
        w += f->payload_len;
    }
    out[w++] = 0x28; /* Event.priority = frame byte + 1 */
    out[w++] = (unsigned char)(f->priority + 1);
    return w;
}

/* The checks and scratch buffers shared by the two frame accept calls: rows
 * and bodies must hold cap rows and 2 * len + 16 bytes; on 0 the caller frees
 * *frames and *scratch. */
static int frames_prepare(const void *buf, size_t len, const struct shardq_accept_limits *limits,
                          const struct shardq_accepted *rows, size_t max_rows, size_t *n_rows,
                          const void *bodies, size_t bodies_cap, size_t *bodies_len,
                          uint32_t counts[3], size_t cap, struct shardq_frame **frames,
                          struct shardq_accepted **scratch)
{
    if ((buf == NULL && len != 0) || limits == NULL ||
        limits->size < ACCEPT_LIMITS_MIN_SIZE || n_rows == NULL ||
        (rows == NULL && max_rows != 0) || bodies_len == NULL || counts == NULL ||
        bodies == NULL || len > UINT32_MAX)
        return SHARDQ_EINVAL;
    counts[0] = counts[1] = counts[2] = 0;
    if (max_rows < cap || bodies_cap < 2 * len + 16)
        return SHARDQ_ENOBUFS;
    *frames = malloc(cap * sizeof **frames);
    *scratch = malloc(cap * sizeof **scratch);
    if (*frames == NULL || *scratch == NULL) {
        free(*frames);
        free(*scratch);
        return SHARDQ_ENOMEM;
    }
    return 0;
}

int shardq_frames_accept(const void *buf, size_t len, uint32_t max_frame, uint32_t flags,
                         const struct shardq_accept_limits *limits, struct shardq_accepted *rows,
                         size_t max_rows, size_t *n_rows, void *bodies, size_t bodies_cap,
                         size_t *bodies_len, uint32_t counts[3], size_t *consumed, uint32_t *fatal)
{
    if (n_rows)
        *n_rows = 0;
    if (bodies_len)
        *bodies_len = 0;
    if (consumed)
        *consumed = 0;
    if (fatal)
        *fatal = SHARDQ_FRAME_OK;
    if (consumed == NULL || fatal == NULL)
        return SHARDQ_EINVAL;
    size_t cap = len / 7 + 1; /* a frame takes at least 7 bytes */
    struct shardq_frame *frames;
    struct shardq_accepted *scratch;
    int ready = frames_prepare(buf, len, limits, rows, max_rows, n_rows, bodies, bodies_cap,
                               bodies_len, counts, cap, &frames, &scratch);
    if (ready)
        return ready;
    size_t n = 0;
    int rc = shardq_frame_parse(buf, len, max_frame, flags, frames, cap, &n, consumed);
    if (rc) {
        free(frames);
        free(scratch);
        return rc;
    }
    const unsigned char *p = buf;
    unsigned char *out = bodies;
    size_t rows_n = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        const struct shardq_frame *f = &frames[i];
        if (f->reason == SHARDQ_FRAME_TRUNCATED || f->reason == SHARDQ_FRAME_TOO_LONG) {
            *fatal = f->reason; /* described last, not consumed */
            break;
        }
        struct shardq_accepted *row = &scratch[rows_n];
        memset(row, 0, sizeof *row);
        row->index = (uint32_t)rows_n++;
        row->reason = f->reason == SHARDQ_FRAME_OK ? SHARDQ_EVENT_OK : SHARDQ_EVENT_FRAME_BASE + f->reason;
        if (row->reason == SHARDQ_EVENT_OK && f->topic_len > limits->max_topic)
            row->reason = SHARDQ_EVENT_TOPIC_TOO_LONG;
        else if (row->reason == SHARDQ_EVENT_OK && f->payload_len > limits->max_payload)
            row->reason = SHARDQ_EVENT_PAYLOAD_TOO_LARGE;
        if (row->reason != SHARDQ_EVENT_OK) {
            row->body_off = f->offset; /* refused: the frame as sent, in buf */
            row->body_len = f->length;
            counts[2]++;
            continue;
        }
        row->priority = f->priority;
        row->hash = f->hash;
        row->body_off = (uint32_t)w;
        row->body_len = (uint32_t)frame_event(p, f, out + w, row);
        w += row->body_len;
        counts[f->priority >= FRAME_HIGH ? 0 : 1]++;
    }
    split_by_lane(scratch, rows_n, counts, rows);
    free(frames);
    free(scratch);
    *n_rows = rows_n;
    *bodies_len = w;
    return 0;
}

/* Reason of a parsed frame under the accept limits (SHARDQ_EVENT_*). */
static uint32_t frame_reason(const struct shardq_frame *f, const struct shardq_accept_limits *limits)
{
    if (f->reason != SHARDQ_FRAME_OK)
        return SHARDQ_EVENT_FRAME_BASE + f->reason;
    if (f->topic_len > limits->max_topic)
        return SHARDQ_EVENT_TOPIC_TOO_LONG;
    if (f->payload_len > limits->max_payload)
        return SHARDQ_EVENT_PAYLOAD_TOO_LARGE;
    return SHARDQ_EVENT_OK;
}

int shardq_datagrams_accept(const void *buf, size_t len, uint32_t max_frame,
                            const struct shardq_accept_limits *limits,
                            struct shardq_accepted *rows, size_t max_rows, size_t *n_rows,
                            void *bodies, size_t bodies_cap, size_t *bodies_len,
                            uint32_t counts[3])
{
    if (n_rows)
        *n_rows = 0;
    if (bodies_len)
        *bodies_len = 0;
    size_t cap = len / 4 + 1; /* a datagram's record takes 4 bytes, a frame 7 */
    struct shardq_frame *frames;
    struct shardq_accepted *scratch;
    int ready = frames_prepare(buf, len, limits, rows, max_rows, n_rows, bodies, bodies_cap,
                               bodies_len, counts, cap, &frames, &scratch);
    if (ready)
        return ready;
    const unsigned char *p = buf;
    unsigned char *out = bodies;
    size_t rows_n = 0, w = 0, at = 0;
    int rc = 0;
    for (uint32_t datagram = 0; at < len; datagram++) {
        if (len - at < 4 || _shardq_be32(p + at) > len - at - 4) {
            rc = SHARDQ_EBADMSG; /* not a record batch */
            break;
        }
        size_t dlen = _shardq_be32(p + at), start = at + 4;
        at = start + dlen;
        size_t n = 0, consumed = 0;
        rc = shardq_frame_parse(p + start, dlen, max_frame, SHARDQ_FRAME_FINAL, frames, cap, &n,
                                &consumed);
        if (rc)
            break;
        size_t bad = n;
        uint32_t reason = SHARDQ_EVENT_OK;
        for (size_t i = 0; i < n && bad == n; i++) {
            reason = frame_reason(&frames[i], limits);
            if (reason != SHARDQ_EVENT_OK)
                bad = i;
        }
        if (bad < n) { /* the datagram goes whole or not at all */
            struct shardq_accepted *row = &scratch[rows_n++];
            memset(row, 0, sizeof *row);
            row->index = datagram;
            row->reason = reason;
            row->body_off = (uint32_t)(start + frames[bad].offset);
            row->body_len = (uint32_t)(frames[bad].length < dlen - frames[bad].offset
                                       ? frames[bad].length : dlen - frames[bad].offset);
            row->id_off = (uint32_t)bad; /* good frames before it, dropped with it */
            counts[2]++;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            const struct shardq_frame *f = &frames[i];
            struct shardq_accepted *row = &scratch[rows_n++];
            memset(row, 0, sizeof *row);
            row->index = datagram;
            row->priority = f->priority;
            row->hash = f->hash;
            row->body_off = (uint32_t)w;
            row->body_len = (uint32_t)frame_event(p + start, f, out + w, row);
            w += row->body_len;
            counts[f->priority >= FRAME_HIGH ? 0 : 1]++;
        }
    }
    if (rc == 0) {
        split_by_lane(scratch, rows_n, counts, rows);
        *n_rows = rows_n;
        *bodies_len = w;
    } else {
        counts[0] = counts[1] = counts[2] = 0;
    }
    free(frames);
    free(scratch);
    return rc;
}

/* google.protobuf.Timestamp of time_ns as field `tag`: returns bytes written. */
static size_t put_timestamp(unsigned char *out, unsigned char tag, int64_t time_ns)
{
    uint64_t seconds = (uint64_t)(time_ns / 1000000000), nanos = (uint64_t)(time_ns % 1000000000);
    size_t body = 1 + varint_size(seconds) + (nanos ? 1 + varint_size(nanos) : 0);
    size_t w = 0;
    out[w++] = tag;
    w += put_varint(out + w, body);
    out[w++] = 0x08;
    w += put_varint(out + w, seconds);
    if (nanos) {
        out[w++] = 0x10;
        w += put_varint(out + w, nanos);
    }
    return w;
}

/* Encode a PublishAck wrapped as PublishResult.ack (and in result_tag when set). */
static size_t put_result(unsigned char *out, uint32_t result_tag, const unsigned char *id, size_t id_len,
                         uint64_t partition, uint64_t offset, int duplicate, uint32_t durability,
                         int64_t time_ns)
{
    unsigned char ack[SHARDQ_ACK_MAX_OVERHEAD];
    size_t a = 0;
    ack[a++] = 0x10;
    a += put_varint(ack + a, partition);
    ack[a++] = 0x18;
    a += put_varint(ack + a, offset);
    if (duplicate) {
        ack[a++] = 0x20;
        ack[a++] = 0x01;
    }
    ack[a++] = 0x28;
    a += put_varint(ack + a, durability);
    a += put_timestamp(ack + a, 0x32, time_ns);
    size_t ack_len = 1 + varint_size(id_len) + id_len + a;
    size_t result_len = 1 + varint_size(ack_len) + ack_len;
    size_t w = 0;
    if (result_tag) {
        out[w++] = (unsigned char)result_tag;
        w += put_varint(out + w, result_len);
    }
    out[w++] = 0x0a; /* PublishResult.ack */
    w += put_varint(out + w, ack_len);
    out[w++] = 0x0a; /* PublishAck.id */
    w += put_varint(out + w, id_len);
    memcpy(out + w, id, id_len);
    w += id_len;
    memcpy(out + w, ack, a);
    return w + a;
}

static size_t put_hex(unsigned char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = (unsigned char)digits[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* The id of row i: the producer's, or prefix + hex(generated[i]). */
static size_t row_id(const struct shardq_stage_args *a, const unsigned char *bodies,
                     const struct shardq_accepted *r, uint64_t generated, unsigned char *buf,
                     const unsigned char **id)
{
    if (r->id_len) {
        *id = bodies + r->body_off + r->id_off;
        return r->id_len;
    }
    memcpy(buf, a->id_prefix, a->id_prefix_len);
    *id = buf;
    return a->id_prefix_len + put_hex(buf + a->id_prefix_len, generated);
}

/* Records whose header is written and whose CRC32C is not yet: sealed three
 * at a time (_shardq_crc32c_three), while their bytes are still in cache. */
struct unsealed {
    unsigned char *record[3];
    size_t length[3];
    int count;
};

/* Queues the record of @length bytes at @p; seals the three queued once full. */
static void unseal(struct unsealed *u, unsigned char *p, size_t length)
{
    u->record[u->count] = p;
    u->length[u->count++] = length;
    if (u->count < 3)
        return;
    const unsigned char *spans[3] = {u->record[0] + 8, u->record[1] + 8, u->record[2] + 8};
    size_t lengths[3] = {u->length[0] - 8, u->length[1] - 8, u->length[2] - 8};
    uint32_t crc[3];
    _shardq_crc32c_three(spans, lengths, crc);
    for (int i = 0; i < 3; i++)
        _shardq_put_le(u->record[i] + 4, crc[i], 4);
    u->count = 0;
}

/* Seals the records still queued (fewer than three), one at a time. */
static void seal_rest(struct unsealed *u)
{
    for (int i = 0; i < u->count; i++)
        _shardq_put_le(u->record[i] + 4, shardq_crc32c(0, u->record[i] + 8, u->length[i] - 8), 4);
    u->count = 0;
}

int shardq_stage(struct shardq_stage_args *a, const void *bodies, size_t bodies_len,
                 const struct shardq_accepted *rows, size_t n, const struct shardq_dup *dups,
                 uint64_t *next_offsets, struct shardq_staged *out)
{
    if (a == NULL || a->size < sizeof(struct shardq_stage_args) || out == NULL ||
        out->size < sizeof(struct shardq_staged) || next_offsets == NULL ||
        (rows == NULL && n != 0) || (bodies == NULL && bodies_len != 0) || a->partitions == 0 ||
        a->id_prefix_len > SHARDQ_ID_PREFIX_MAX || out->records == NULL || out->record_ends == NULL ||
        out->record_topics == NULL || out->record_priorities == NULL || out->part_counts == NULL ||
        out->row_positions == NULL || out->results == NULL || a->time_ns < 0)
        return SHARDQ_EINVAL;
    const unsigned char *b = bodies;
    int stored = (a->flags & SHARDQ_RECORDS_STORED) != 0;
    size_t need_records = 0, need_results = 0;
    for (size_t i = 0; i < n; i++) {
        const struct shardq_accepted *r = &rows[i];
        if (r->reason != SHARDQ_EVENT_OK || (size_t)r->body_off + r->body_len > bodies_len ||
            (size_t)r->id_off + r->id_len > r->body_len ||
            (size_t)r->topic_off + r->topic_len > r->body_len ||
            (stored && r->topic_len > 0xFFFF))
            return SHARDQ_EINVAL;
        if (dups && dups[i].partition < -1) {
            size_t j = (size_t)(-2 - dups[i].partition);
            if (j >= i || dups[j].partition != -1)
                return SHARDQ_EINVAL;
        }
        size_t id = r->id_len ? r->id_len : SHARDQ_ID_PREFIX_MAX + 16;
        need_records += r->body_len + id + SHARDQ_RECORD_MAX_OVERHEAD +
                        (stored ? SHARDQ_SEGMENT_HEADER + r->topic_len : 0);
        need_results += id + SHARDQ_ACK_MAX_OVERHEAD;
    }
    out->records_len = out->results_len = out->record_count = 0;
    if (out->records_cap < need_records || out->results_cap < need_results) {
        out->records_len = need_records;
        out->results_len = need_results;
        return SHARDQ_ENOBUFS;
    }
    uint32_t parts = a->partitions;
    uint64_t *generated = malloc((n ? n : 1) * sizeof *generated);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    size_t *slot = malloc(parts * sizeof *slot);
    if (generated == NULL || order == NULL || slot == NULL) {
        free(generated);
        free(order);
        free(slot);
        return SHARDQ_ENOMEM;
    }
    /* Placement, in row order: a new event gets its partition's next offset. */
    memset(out->part_counts, 0, parts * sizeof *out->part_counts);
    for (size_t i = 0; i < n; i++) {
        int64_t dup = dups ? dups[i].partition : -1;
        generated[i] = 0;
        if (dup == -1) {
            uint32_t p = rows[i].hash % parts;
            out->row_positions[2 * i] = p;
            out->row_positions[2 * i + 1] = next_offsets[p]++;
            out->part_counts[p]++;
            if (rows[i].id_len == 0)
                generated[i] = ++a->id_counter;
        } else if (dup >= 0) {
            out->row_positions[2 * i] = (uint64_t)dup;
            out->row_positions[2 * i + 1] = (uint64_t)dups[i].offset;
        } else {
            size_t j = (size_t)(-2 - dup);
            out->row_positions[2 * i] = out->row_positions[2 * j];
            out->row_positions[2 * i + 1] = out->row_positions[2 * j + 1];
        }
    }
    size_t count = 0;
    for (uint32_t p = 0; p < parts; p++) {
        slot[p] = count;
        count += out->part_counts[p];
    }
    for (size_t i = 0; i < n; i++)
        if (!dups || dups[i].partition == -1)
            order[slot[out->row_positions[2 * i]]++] = i;
    /* Records, partition-major: body, generated id, ingest time, partition,
     * offset; when stored, each in its segment record (header and topic first). */
    unsigned char time_field[32], idbuf[SHARDQ_ID_PREFIX_MAX + 16];
    size_t time_len = put_timestamp(time_field, 0x42, a->time_ns);
    unsigned char *rec = out->records;
    size_t w = 0;
    struct unsealed unsealed = {.count = 0};
    for (size_t k = 0; k < count; k++) {
        size_t i = order[k];
        const struct shardq_accepted *r = &rows[i];
        uint64_t partition = out->row_positions[2 * i], offset = out->row_positions[2 * i + 1];
        const unsigned char *id;
        size_t id_len = row_id(a, b, r, generated[i], idbuf, &id);
        size_t id_field = r->id_len ? 0 : 1 + varint_size(id_len) + id_len;
        size_t content = r->body_len + id_field + time_len + 1 + varint_size(partition) + 1 +
                         varint_size(offset);
        size_t head = w;
        if (stored) {
            w += SHARDQ_SEGMENT_HEADER + r->topic_len;
            out->record_topics[2 * k] = (uint32_t)(head + SHARDQ_SEGMENT_HEADER);
        }
        rec[w++] = 0x0a; /* SubscribeResponse.events */
        w += put_varint(rec + w, content);
        if (!stored)
            out->record_topics[2 * k] = (uint32_t)(w + r->topic_off);
        out->record_topics[2 * k + 1] = r->topic_len;
        memcpy(rec + w, b + r->body_off, r->body_len);
        w += r->body_len;
        if (id_field) {
            rec[w++] = 0x0a; /* Event.id */
            w += put_varint(rec + w, id_len);
            memcpy(rec + w, id, id_len);
            w += id_len;
        }
        memcpy(rec + w, time_field, time_len);
        w += time_len;
        rec[w++] = 0x48; /* Event.partition */
        w += put_varint(rec + w, partition);
        rec[w++] = 0x50; /* Event.offset */
        w += put_varint(rec + w, offset);
        if (stored) {
            _shardq_record_head(rec + head, w - head, offset, a->time_ns, (uint8_t)r->priority,
                                b + r->body_off + r->topic_off, r->topic_len);
            unseal(&unsealed, rec + head, w - head);
        }
        out->record_ends[k] = (uint32_t)w;
        out->record_priorities[k] = (uint8_t)r->priority;
    }
    seal_rest(&unsealed);
    out->records_len = w;
    out->record_count = count;
    /* Acknowledgements, in row order. */
    unsigned char *res = out->results;
    w = 0;
    for (size_t i = 0; i < n; i++) {
        const struct shardq_accepted *r = &rows[i];
        int64_t dup = dups ? dups[i].partition : -1;
        int64_t time_ns = a->time_ns;
        uint64_t gen = generated[i];
        if (dup < -1)
            gen = generated[(size_t)(-2 - dup)];
        else if (dup >= 0)
            time_ns = dups[i].time_ns;
        const unsigned char *id;
        size_t id_len = row_id(a, b, r, gen, idbuf, &id);
        w += put_result(res + w, a->result_tag, id, id_len, out->row_positions[2 * i],
                        out->row_positions[2 * i + 1], dup != -1, a->durability, time_ns);
    }
    out->results_len = w;
    free(generated);
    free(order);
    free(slot);
    return 0;
}
