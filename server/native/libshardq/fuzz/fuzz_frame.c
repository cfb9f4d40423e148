/*
 * Fuzz target: frame parser, topic check and pattern matcher.
 * Checks the parser's invariants on arbitrary bytes, not just "no crash".
 */
#include <stdlib.h>
#include <string.h>

#include "shardq.h"

#define MAX_OUT 64

static void fail(void)
{
    abort();
}

static void check_parse(const uint8_t *data, size_t size, uint32_t max_frame, uint32_t flags)
{
    struct shardq_frame f[MAX_OUT];
    size_t n = 0, used = 0;
    if (shardq_frame_parse(data, size, max_frame, flags, f, MAX_OUT, &n, &used) != 0)
        fail();
    if (n > MAX_OUT || used > size)
        fail();
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        int fatal = f[i].reason == SHARDQ_FRAME_TRUNCATED || f[i].reason == SHARDQ_FRAME_TOO_LONG;
        if (f[i].offset != pos || f[i].reason > SHARDQ_FRAME_TOPIC_EMPTY_LEVEL)
            fail();
        if (fatal) {
            if (i != n - 1 || pos != used)
                fail();
            if (f[i].reason == SHARDQ_FRAME_TRUNCATED && !(flags & SHARDQ_FRAME_FINAL))
                fail();
            break;
        }
        if ((size_t)f[i].offset + f[i].length > size || f[i].length < 4)
            fail();
        if (f[i].reason >= SHARDQ_FRAME_TOPIC_EMPTY || f[i].reason == SHARDQ_FRAME_OK) {
            if (f[i].topic_off != f[i].offset + 7 || f[i].payload_off != f[i].topic_off + f[i].topic_len ||
                f[i].payload_off + f[i].payload_len != f[i].offset + f[i].length)
                fail();
            if (shardq_topic_check(data + f[i].topic_off, f[i].topic_len) != f[i].reason)
                fail();
        }
        if (f[i].reason == SHARDQ_FRAME_OK &&
            (f[i].priority > 4 || f[i].hash != shardq_crc32c(0, data + f[i].topic_off, f[i].topic_len)))
            fail();
        pos += f[i].length;
    }
    if (n < MAX_OUT && !(flags & SHARDQ_FRAME_FINAL)) {
        /* Stopped early only for a fatal frame or an incomplete tail. */
        int fatal_last = n > 0 && (f[n - 1].reason == SHARDQ_FRAME_TOO_LONG);
        if (!fatal_last && used < size) {
            size_t left = size - used;
            if (left >= 4) {
                uint32_t l = (uint32_t)data[used] << 24 | (uint32_t)data[used + 1] << 16 |
                             (uint32_t)data[used + 2] << 8 | data[used + 3];
                if ((size_t)l + 4 <= left)
                    fail();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size, 1u << 20, 0);
    check_parse(data, size, 1u << 20, SHARDQ_FRAME_FINAL);
    check_parse(data, size, 16, SHARDQ_FRAME_FINAL);
    /* Pattern matching: split the input at the first NUL into pattern/topic. */
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    const uint8_t *topic = nul ? nul + 1 : data + size;
    size_t tlen = nul ? size - plen - 1 : 0;
    int m = shardq_topic_match(data, plen, topic, tlen);
    if (m != 0 && m != 1 && m != SHARDQ_EINVAL)
        fail();
    if (m >= 0 && shardq_topic_match("#", 1, topic, tlen) != 1)
        fail();
    if (shardq_topic_match(topic, tlen, topic, tlen) == 0 &&
        shardq_topic_check(topic, tlen) == SHARDQ_FRAME_OK)
        fail(); /* a valid topic is a pattern that matches itself */
    return 0;
}
