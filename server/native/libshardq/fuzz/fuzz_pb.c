/* Fuzz target: protobuf field walker and Event span extraction. */
#include <stdlib.h>

#include "shardq.h"

static void fail(void)
{
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t spans[2 * 16];
    size_t n = 0;
    int rc = shardq_pb_fields(data, size, 1, spans, 16, &n);
    if (rc == 0 || rc == SHARDQ_ENOBUFS) {
        for (size_t i = 0; i < n && i < 16; i++)
            if ((size_t)spans[2 * i] + spans[2 * i + 1] > size)
                fail();
    } else if (rc != SHARDQ_EBADMSG) {
        fail();
    }
    struct shardq_event_spans e[8];
    rc = shardq_pb_events(data, size, 1, e, 8, &n);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            if ((size_t)e[i].event_off + e[i].event_len > size ||
                (size_t)e[i].topic_off + e[i].topic_len > size ||
                (size_t)e[i].payload_off + e[i].payload_len > size ||
                (size_t)e[i].key_off + e[i].key_len > size || (size_t)e[i].id_off + e[i].id_len > size)
                fail();
        }
    } else if (rc != SHARDQ_ENOBUFS && rc != SHARDQ_EBADMSG && rc != SHARDQ_EILSEQ) {
        fail();
    }
    rc = shardq_pb_event(data, size, e);
    if (rc != 0 && rc != SHARDQ_EBADMSG && rc != SHARDQ_EILSEQ)
        fail();
    return 0;
}
