/* Topic validation and pattern matching. */
#include <string.h>

#include "check.h"
#include "shardq.h"

static int m(const char *pattern, const char *topic)
{
    return shardq_topic_match(pattern, strlen(pattern), topic, strlen(topic));
}

static uint32_t tc(const char *topic)
{
    return shardq_topic_check(topic, strlen(topic));
}

/* Append one segment record (CRC left 0: not checked by the selection) at *at. */
static void record(unsigned char *buf, size_t *at, uint8_t priority, const char *topic, const char *event)
{
    size_t tlen = strlen(topic), elen = strlen(event), length = SHARDQ_SEGMENT_HEADER - 4 + tlen + elen;
    unsigned char *p = buf + *at;
    memset(p, 0, SHARDQ_SEGMENT_HEADER);
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(length >> (8 * i));
    p[24] = priority;
    p[25] = (unsigned char)tlen;
    p[26] = (unsigned char)(tlen >> 8);
    memcpy(p + SHARDQ_SEGMENT_HEADER, topic, tlen);
    memcpy(p + SHARDQ_SEGMENT_HEADER + tlen, event, elen);
    *at += 4 + length;
}

/* Patterns as shardq_records_select() takes them. */
static size_t patterns(unsigned char *out, const char *const *list, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]);
        out[at] = (unsigned char)len;
        out[at + 1] = (unsigned char)(len >> 8);
        memcpy(out + at + 2, list[i], len);
        at += 2 + len;
    }
    return at;
}

static void test_select(void)
{
    unsigned char block[1024], out[1024], pats[64];
    size_t len = 0;
    record(block, &len, 3, "rt/a", "A1");
    record(block, &len, 0, "flood/1", "F1");
    record(block, &len, 0, "rt/a", "low");
    record(block, &len, 3, "flood/2", "F2");
    record(block, &len, 4, "rt/b", "B1");
    record(block, &len, 3, "rt/a", "A2");
    const char *const list[] = {"nothing", "rt/*"};
    struct shardq_select_args a = {.size = sizeof a, .limit = 100, .min_priority = 3, .n_patterns = 2};
    a.patterns = pats;
    a.patterns_len = patterns(pats, list, 2);
    a.budget = 1000;
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), 0);
    CHECK_EQ(a.examined, 6);
    CHECK_EQ(a.matched, 3);
    CHECK_EQ(a.out_len, 6);
    CHECK(memcmp(out, "A1B1A2", 6) == 0);
    CHECK_EQ(a.end, len);
    CHECK_EQ(a.full, 0);
    /* Skip and limit: records 2..4 (one match). */
    a.skip = 2;
    a.limit = 3;
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), 0);
    CHECK_EQ(a.examined, 3);
    CHECK_EQ(a.matched, 1);
    CHECK(memcmp(out, "B1", 2) == 0);
    /* The budget: a match past it starts the next delivery, unless nothing is held yet. */
    a.skip = 0;
    a.limit = 100;
    a.budget = 3;
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), 0);
    CHECK_EQ(a.matched, 1);
    CHECK_EQ(a.examined, 4); /* stopped at the second match, record 4 */
    CHECK_EQ(a.full, 1);
    a.budget = 1;
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), 0);
    CHECK_EQ(a.matched, 1); /* the first goes whatever its size */
    a.held_any = 1;
    a.held = 1;
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), 0);
    CHECK_EQ(a.matched, 0);
    CHECK_EQ(a.examined, 0);
    CHECK_EQ(a.full, 1);
    /* Every topic, every priority: the stored events back to back. */
    a = (struct shardq_select_args){.size = sizeof a, .limit = 100, .match_all = 1, .budget = 1000};
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), 0);
    CHECK_EQ(a.matched, 6);
    CHECK(memcmp(out, "A1F1lowF2B1A2", 13) == 0);
    /* No pattern matches nothing; too small an output; bad arguments and patterns. */
    a.match_all = 0;
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), 0);
    CHECK_EQ(a.matched, 0);
    CHECK_EQ(a.examined, 6);
    a.match_all = 1;
    CHECK_EQ(shardq_records_select(block, len, &a, out, 5), SHARDQ_ENOBUFS);
    CHECK_EQ(a.matched, 2);
    a.size = 4;
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), SHARDQ_EINVAL);
    const char *const bad[] = {"a//b"};
    a = (struct shardq_select_args){.size = sizeof a, .limit = 100, .n_patterns = 1, .patterns = pats};
    a.patterns_len = patterns(pats, bad, 1);
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), SHARDQ_EINVAL);
    a.patterns_len = patterns(pats, list, 2) - 1; /* the last pattern cut short */
    a.n_patterns = 2;
    CHECK_EQ(shardq_records_select(block, len, &a, out, sizeof out), SHARDQ_EINVAL);
    /* Damage: a record running past the block, a topic past its record. */
    a = (struct shardq_select_args){.size = sizeof a, .limit = 100, .match_all = 1, .budget = 1000};
    CHECK_EQ(shardq_records_select(block, len - 1, &a, out, sizeof out), SHARDQ_EBADMSG);
    CHECK_EQ(a.matched, 5);
    CHECK_EQ(a.end, len - 33);
    unsigned char bent[64];
    size_t blen = 0;
    record(bent, &blen, 3, "rt/a", "A1");
    bent[25] = 40; /* topic longer than the record */
    CHECK_EQ(shardq_records_select(bent, blen, &a, out, sizeof out), SHARDQ_EBADMSG);
    CHECK_EQ(a.end, 0);
    a.skip = 1;
    CHECK_EQ(shardq_records_select(bent, blen - 1, &a, out, sizeof out), SHARDQ_EBADMSG);
}

int main(void)
{
    CHECK_EQ(m("sensors/*", "sensors/a"), 1);
    CHECK_EQ(m("sensors/*", "sensors/b/c"), 0);
    CHECK_EQ(m("sensors/#", "sensors/a"), 1);
    CHECK_EQ(m("sensors/#", "sensors/b/c"), 1);
    CHECK_EQ(m("sensors/#", "sensors"), 1);
    CHECK_EQ(m("sensors/#", "sensorsX"), 0);
    CHECK_EQ(m("orders/#", "orders"), 1);
    CHECK_EQ(m("#", "anything/at/all"), 1);
    CHECK_EQ(m("#", "x"), 1);
    CHECK_EQ(m("*", "x"), 1);
    CHECK_EQ(m("*", "x/y"), 0);
    CHECK_EQ(m("*", ""), 0);
    CHECK_EQ(m("a/*/c", "a/b/c"), 1);
    CHECK_EQ(m("a/*/c", "a//c"), 0);
    CHECK_EQ(m("a/b", "a/b"), 1);
    CHECK_EQ(m("a/b", "a/b/c"), 0);
    CHECK_EQ(m("a/b", "a"), 0);
    CHECK_EQ(m("a/b/c", "a/b"), 0);
    CHECK_EQ(m("*/#", "a"), 1);
    CHECK_EQ(m("*/*/#", "a"), 0);
    /* Invalid patterns. */
    CHECK_EQ(m("", "a"), SHARDQ_EINVAL);
    CHECK_EQ(m("a//b", "a/b"), SHARDQ_EINVAL);
    CHECK_EQ(m("a/", "a"), SHARDQ_EINVAL);
    CHECK_EQ(m("#/a", "a"), SHARDQ_EINVAL);
    CHECK_EQ(m("a#", "a"), SHARDQ_EINVAL);
    CHECK_EQ(m("a*/b", "a/b"), SHARDQ_EINVAL);
    /* Batch. */
    const char *base = "sensors/asensors/b/cother";
    uint32_t spans[] = {0, 9, 9, 11, 20, 5};
    uint8_t out[3];
    CHECK_EQ(shardq_topic_match_batch("sensors/*", 9, base, spans, 3, out), 0);
    CHECK(out[0] == 1 && out[1] == 0 && out[2] == 0);
    CHECK_EQ(shardq_topic_match_batch("a//", 3, base, spans, 3, out), SHARDQ_EINVAL);
    /* Topic check: each reason. */
    CHECK_EQ(tc("a/b"), SHARDQ_FRAME_OK);
    CHECK_EQ(tc(""), SHARDQ_FRAME_TOPIC_EMPTY);
    CHECK_EQ(tc("a/*"), SHARDQ_FRAME_TOPIC_WILDCARD);
    CHECK_EQ(tc("a/#"), SHARDQ_FRAME_TOPIC_WILDCARD);
    CHECK_EQ(tc("/a"), SHARDQ_FRAME_TOPIC_EMPTY_LEVEL);
    CHECK_EQ(tc("a/"), SHARDQ_FRAME_TOPIC_EMPTY_LEVEL);
    CHECK_EQ(tc("a//b"), SHARDQ_FRAME_TOPIC_EMPTY_LEVEL);
    CHECK_EQ(tc("caf\xc3\xa9"), SHARDQ_FRAME_OK);
    CHECK_EQ(tc("\xf0\x9f\x98\x80"), SHARDQ_FRAME_OK);     /* U+1F600 */
    CHECK_EQ(tc("a\xff"), SHARDQ_FRAME_TOPIC_NOT_UTF8);
    CHECK_EQ(tc("\xc0\xaf"), SHARDQ_FRAME_TOPIC_NOT_UTF8);  /* overlong */
    CHECK_EQ(tc("\xed\xa0\x80"), SHARDQ_FRAME_TOPIC_NOT_UTF8); /* surrogate */
    CHECK_EQ(tc("\xf4\x90\x80\x80"), SHARDQ_FRAME_TOPIC_NOT_UTF8); /* > U+10FFFF */
    CHECK_EQ(tc("\xe2\x82"), SHARDQ_FRAME_TOPIC_NOT_UTF8);  /* cut short */
    CHECK_EQ(tc("\xff*"), SHARDQ_FRAME_TOPIC_NOT_UTF8);     /* UTF-8 checked before wildcards */
    test_select();
    return CHECK_DONE();
}
