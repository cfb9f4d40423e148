/* Frame parser: good frames, every reason code, stream tails, datagrams. */
#include <string.h>

#include "check.h"
#include "shardq.h"

/* Append one frame; returns the new length. */
static size_t frame(unsigned char *buf, size_t at, unsigned prio, const char *topic, const char *payload)
{
    size_t tl = strlen(topic), pl = strlen(payload);
    uint32_t len = (uint32_t)(3 + tl + pl);
    buf[at] = (unsigned char)(len >> 24);
    buf[at + 1] = (unsigned char)(len >> 16);
    buf[at + 2] = (unsigned char)(len >> 8);
    buf[at + 3] = (unsigned char)len;
    buf[at + 4] = (unsigned char)prio;
    buf[at + 5] = (unsigned char)(tl >> 8);
    buf[at + 6] = (unsigned char)tl;
    memcpy(buf + at + 7, topic, tl);
    memcpy(buf + at + 7 + tl, payload, pl);
    return at + 4 + len;
}

static uint32_t reason_of(unsigned prio, const char *topic)
{
    unsigned char buf[256];
    struct shardq_frame f[4];
    size_t n, used;
    size_t len = frame(buf, 0, prio, topic, "p");
    CHECK_EQ(shardq_frame_parse(buf, len, 1024, 0, f, 4, &n, &used), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(used, len);
    return f[0].reason;
}

int main(void)
{
    unsigned char buf[1024];
    struct shardq_frame f[8];
    size_t n, used;

    /* Two good frames. */
    size_t len = frame(buf, 0, 3, "sensors/a", "hello");
    size_t first = len;
    len = frame(buf, len, 0, "b", "");
    CHECK_EQ(shardq_frame_parse(buf, len, 1024, 0, f, 8, &n, &used), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(used, len);
    CHECK_EQ(f[0].reason, SHARDQ_FRAME_OK);
    CHECK_EQ(f[0].offset, 0);
    CHECK_EQ(f[0].length, first);
    CHECK_EQ(f[0].priority, 3);
    CHECK_EQ(f[0].topic_off, 7);
    CHECK_EQ(f[0].topic_len, 9);
    CHECK_EQ(f[0].payload_off, 16);
    CHECK_EQ(f[0].payload_len, 5);
    CHECK(memcmp(buf + f[0].payload_off, "hello", 5) == 0);
    CHECK_EQ(f[0].hash, shardq_crc32c(0, "sensors/a", 9));
    CHECK_EQ(f[1].offset, first);
    CHECK_EQ(f[1].payload_len, 0);

    /* Stream: an incomplete tail is left for later, at every cut point. */
    for (size_t cut = 0; cut < len; cut++) {
        CHECK_EQ(shardq_frame_parse(buf, cut, 1024, 0, f, 8, &n, &used), 0);
        CHECK_EQ(n, cut >= first ? 1 : 0);
        CHECK_EQ(used, cut >= first ? first : 0);
    }
    /* Datagram: the same tail is a fatal TRUNCATED frame. */
    CHECK_EQ(shardq_frame_parse(buf, first + 2, 1024, SHARDQ_FRAME_FINAL, f, 8, &n, &used), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(used, first);
    CHECK_EQ(f[1].reason, SHARDQ_FRAME_TRUNCATED);
    CHECK_EQ(f[1].length, 2);
    CHECK_EQ(shardq_frame_parse(buf, first + 6, 1024, SHARDQ_FRAME_FINAL, f, 8, &n, &used), 0);
    CHECK_EQ(f[1].reason, SHARDQ_FRAME_TRUNCATED);
    CHECK_EQ(f[1].length, 6);

    /* Descriptor array full: stop after max_out, consumed matches. */
    CHECK_EQ(shardq_frame_parse(buf, len, 1024, 0, f, 1, &n, &used), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(used, first);

    /* Too long: fatal, reported even before the body arrives. */
    len = frame(buf, 0, 1, "a", "x");
    size_t big = frame(buf, len, 1, "a", "0123456789");
    CHECK_EQ(shardq_frame_parse(buf, len + 4, 8, 0, f, 8, &n, &used), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(used, len);
    CHECK_EQ(f[0].reason, SHARDQ_FRAME_OK);
    CHECK_EQ(f[1].reason, SHARDQ_FRAME_TOO_LONG);
    CHECK_EQ(f[1].length, big - len);
    /* Huge declared length saturates. */
    memset(buf, 0xFF, 4);
    CHECK_EQ(shardq_frame_parse(buf, 4, 1024, 0, f, 8, &n, &used), 0);
    CHECK_EQ(f[0].reason, SHARDQ_FRAME_TOO_LONG);
    CHECK_EQ(f[0].length, UINT32_MAX);

    /* Non-fatal reasons: the frame is skipped and parsing goes on. */
    CHECK_EQ(reason_of(5, "a"), SHARDQ_FRAME_BAD_PRIORITY);
    CHECK_EQ(reason_of(255, "a"), SHARDQ_FRAME_BAD_PRIORITY);
    CHECK_EQ(reason_of(4, "a"), SHARDQ_FRAME_OK);
    CHECK_EQ(reason_of(2, ""), SHARDQ_FRAME_TOPIC_EMPTY);
    CHECK_EQ(reason_of(2, "a\xff"), SHARDQ_FRAME_TOPIC_NOT_UTF8);
    CHECK_EQ(reason_of(2, "a/*"), SHARDQ_FRAME_TOPIC_WILDCARD);
    CHECK_EQ(reason_of(2, "#"), SHARDQ_FRAME_TOPIC_WILDCARD);
    CHECK_EQ(reason_of(2, "a//b"), SHARDQ_FRAME_TOPIC_EMPTY_LEVEL);
    CHECK_EQ(reason_of(2, "/a"), SHARDQ_FRAME_TOPIC_EMPTY_LEVEL);

    /* BAD_LENGTH: declared length below the header, then topic_len overrun. */
    unsigned char bl[] = {0, 0, 0, 2, 1, 0,           /* length 2 */
                          0, 0, 0, 4, 1, 0, 9, 'a',   /* topic_len 9 > 1 */
                          0, 0, 0, 4, 1, 0, 1, 'a'};  /* good */
    CHECK_EQ(shardq_frame_parse(bl, sizeof bl, 1024, 0, f, 8, &n, &used), 0);
    CHECK_EQ(n, 3);
    CHECK_EQ(used, sizeof bl);
    CHECK_EQ(f[0].reason, SHARDQ_FRAME_BAD_LENGTH);
    CHECK_EQ(f[0].length, 6);
    CHECK_EQ(f[1].reason, SHARDQ_FRAME_BAD_LENGTH);
    CHECK_EQ(f[1].offset, 6);
    CHECK_EQ(f[2].reason, SHARDQ_FRAME_OK);
    CHECK_EQ(f[2].topic_off, 21);

    /* Arguments. */
    CHECK_EQ(shardq_frame_parse(buf, 4, 1024, 0, f, 0, &n, &used), SHARDQ_EINVAL);
    CHECK_EQ(shardq_frame_parse(buf, 4, 1024, 2, f, 8, &n, &used), SHARDQ_EINVAL);
    CHECK_EQ(shardq_frame_parse(NULL, 0, 1024, 0, f, 8, &n, &used), 0);
    CHECK_EQ(n, 0);
    return CHECK_DONE();
}
