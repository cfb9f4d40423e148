/* Protobuf walking: repeated fields and Event spans, good and malformed. */
#include <string.h>

#include "check.h"
#include "pbenc.h"
#include "shardq.h"

/* A full Event; returns its length. */
static size_t event(unsigned char *b, const char *id, const char *topic, const char *key,
                    const char *payload, uint64_t prio)
{
    size_t at = 0;
    at = put_bytes(b, at, 1, id, strlen(id));
    at = put_bytes(b, at, 2, topic, strlen(topic));
    at = put_bytes(b, at, 3, key, strlen(key));
    at = put_bytes(b, at, 4, payload, strlen(payload));
    at = put_uint(b, at, 5, prio);
    unsigned char entry[16];
    size_t el = put_bytes(entry, 0, 1, "h", 1);
    el = put_bytes(entry, el, 2, "v", 1);
    at = put_bytes(b, at, 6, entry, el);
    unsigned char ts[8];
    size_t tl = put_uint(ts, 0, 1, 1700000000);
    at = put_bytes(b, at, 7, ts, tl);
    at = put_uint(b, at, 9, 3);
    at = put_uint(b, at, 10, 123456789012ULL);
    at = put_uint(b, at, 99, 1); /* unknown field: skipped */
    return at;
}

int main(void)
{
    unsigned char ev[256], msg[1024];
    struct shardq_event_spans e[4];
    size_t n;

    size_t el = event(ev, "id-1", "sensors/a", "k1", "payload!", 4);
    CHECK_EQ(shardq_pb_event(ev, el, &e[0]), 0);
    CHECK(memcmp(ev + e[0].id_off, "id-1", e[0].id_len) == 0 && e[0].id_len == 4);
    CHECK(memcmp(ev + e[0].topic_off, "sensors/a", 9) == 0 && e[0].topic_len == 9);
    CHECK(memcmp(ev + e[0].key_off, "k1", 2) == 0 && e[0].key_len == 2);
    CHECK(memcmp(ev + e[0].payload_off, "payload!", 8) == 0 && e[0].payload_len == 8);
    CHECK_EQ(e[0].priority, 4);
    CHECK_EQ(e[0].hash, shardq_crc32c(0, "k1", 2));
    CHECK_EQ(e[0].event_len, el);
    CHECK_EQ(e[0].seen, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) |
                            (1u << 7) | (1u << 9) | (1u << 10));

    /* Negative enum value reads as int32, like protobuf. */
    el = event(ev, "", "t", "", "", (uint64_t)(int64_t)-1);
    CHECK_EQ(shardq_pb_event(ev, el, &e[0]), 0);
    CHECK_EQ(e[0].priority, -1);
    CHECK_EQ(e[0].hash, shardq_crc32c(0, "t", 1));

    /* A batch request: events = 1, with another field between. */
    size_t at = 0;
    el = event(ev, "a", "x/y", "", "p1", 1);
    at = put_bytes(msg, at, 1, ev, el);
    at = put_bytes(msg, at, 2, "zz", 2);
    size_t second = at;
    el = event(ev, "b", "x/z", "kk", "p2", 5);
    at = put_bytes(msg, at, 1, ev, el);
    CHECK_EQ(shardq_pb_events(msg, at, 1, e, 4, &n), 0);
    CHECK_EQ(n, 2);
    CHECK(memcmp(msg + e[0].payload_off, "p1", 2) == 0);
    CHECK(memcmp(msg + e[1].payload_off, "p2", 2) == 0);
    CHECK(memcmp(msg + e[1].topic_off, "x/z", 3) == 0);
    CHECK(e[1].event_off > second && e[1].event_off + e[1].event_len == at);
    CHECK_EQ(e[1].priority, 5);
    CHECK_EQ(shardq_pb_events(msg, at, 1, e, 1, &n), SHARDQ_ENOBUFS);
    CHECK_EQ(n, 2);

    /* Field spans. */
    uint32_t spans[8];
    CHECK_EQ(shardq_pb_fields(msg, at, 1, spans, 4, &n), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(spans[0] + spans[1], spans[0] + e[0].event_len);
    CHECK_EQ(spans[2], e[1].event_off);
    CHECK_EQ(shardq_pb_fields(msg, at, 2, spans, 4, &n), 0);
    CHECK_EQ(n, 1);
    CHECK(memcmp(msg + spans[0], "zz", 2) == 0);
    CHECK_EQ(shardq_pb_fields(msg, at, 1, spans, 1, &n), SHARDQ_ENOBUFS);
    CHECK_EQ(n, 2);
    CHECK_EQ(shardq_pb_fields(msg, at, 7, spans, 4, &n), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(shardq_pb_fields(msg, at, 0, spans, 4, &n), SHARDQ_EINVAL);

    /* Malformed: every truncation of a valid message is either valid
       (cut at a field boundary) or EBADMSG, never a crash. */
    for (size_t cut = 0; cut < at; cut++) {
        int rc = shardq_pb_fields(msg, cut, 1, spans, 4, &n);
        CHECK(rc == 0 || rc == SHARDQ_EBADMSG);
        rc = shardq_pb_events(msg, cut, 1, e, 4, &n);
        CHECK(rc == 0 || rc == SHARDQ_EBADMSG);
    }
    CHECK_EQ(shardq_pb_fields(msg, second - 1, 1, spans, 4, &n), SHARDQ_EBADMSG);

    unsigned char bad[16];
    /* field number 0 */
    bad[0] = 0x02; bad[1] = 0;
    CHECK_EQ(shardq_pb_fields(bad, 2, 1, spans, 4, &n), SHARDQ_EBADMSG);
    /* group wire type */
    bad[0] = (1 << 3) | 3;
    CHECK_EQ(shardq_pb_fields(bad, 1, 1, spans, 4, &n), SHARDQ_EBADMSG);
    /* the requested field with a varint wire type */
    bad[0] = (1 << 3) | 0; bad[1] = 1;
    CHECK_EQ(shardq_pb_fields(bad, 2, 1, spans, 4, &n), SHARDQ_EBADMSG);
    /* 11-byte varint */
    bad[0] = (3 << 3) | 0;
    memset(bad + 1, 0x80, 10); bad[11] = 0;
    CHECK_EQ(shardq_pb_fields(bad, 12, 1, spans, 4, &n), SHARDQ_EBADMSG);
    /* length past the end */
    bad[0] = (1 << 3) | 2; bad[1] = 5; bad[2] = 'a';
    CHECK_EQ(shardq_pb_fields(bad, 3, 1, spans, 4, &n), SHARDQ_EBADMSG);
    /* Event: topic with a varint wire type */
    bad[0] = (2 << 3) | 0; bad[1] = 1;
    CHECK_EQ(shardq_pb_event(bad, 2, &e[0]), SHARDQ_EBADMSG);
    /* Event: priority length-delimited */
    bad[0] = (5 << 3) | 2; bad[1] = 0;
    CHECK_EQ(shardq_pb_event(bad, 2, &e[0]), SHARDQ_EBADMSG);
    /* Event: topic not UTF-8 */
    bad[0] = (2 << 3) | 2; bad[1] = 1; bad[2] = 0xFF;
    CHECK_EQ(shardq_pb_event(bad, 3, &e[0]), SHARDQ_EILSEQ);
    /* Event: headers entry with broken wire data */
    bad[0] = (6 << 3) | 2; bad[1] = 2; bad[2] = (1 << 3) | 2; bad[3] = 9;
    CHECK_EQ(shardq_pb_event(bad, 4, &e[0]), SHARDQ_EBADMSG);
    /* The index of the bad event is reported. */
    at = 0;
    el = event(ev, "a", "x", "", "", 1);
    at = put_bytes(msg, at, 1, ev, el);
    bad[0] = (2 << 3) | 2; bad[1] = 1; bad[2] = 0xFF;
    at = put_bytes(msg, at, 1, bad, 3);
    CHECK_EQ(shardq_pb_events(msg, at, 1, e, 4, &n), SHARDQ_EILSEQ);
    CHECK_EQ(n, 1);
    /* Empty message. */
    CHECK_EQ(shardq_pb_event(NULL, 0, &e[0]), 0);
    CHECK_EQ(e[0].seen, 0);
    return CHECK_DONE();
}
