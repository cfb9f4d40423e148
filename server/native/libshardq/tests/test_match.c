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
    return CHECK_DONE();
}
