/* CRC32C: both implementations against known vectors, and against each other. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void vectors(crc_fn f)
{
    unsigned char buf[32];
    CHECK_EQ(f(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(f(0, "", 0), 0u);
    memset(buf, 0, 32);
    CHECK_EQ(f(0, buf, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    memset(buf, 0xFF, 32);
    CHECK_EQ(f(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    CHECK_EQ(f(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    CHECK_EQ(f(0, buf, 32), 0x113FDB5Cu);
    /* Chaining equals one pass. */
    CHECK_EQ(f(f(0, "1234", 4), "56789", 5), 0xE3069283u);
}

int main(void)
{
    vectors(_shardq_crc32c_sw);
    vectors(shardq_crc32c);
    if (_shardq_crc32c_hw_available()) {
        vectors(_shardq_crc32c_hw);
        CHECK(shardq_features() & SHARDQ_FEATURE_CRC32C_HW);
        unsigned char big[4099];
        srand(7);
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (unsigned char)rand();
        for (size_t off = 0; off < 9; off++)
            for (size_t len = 0; len < 300; len += 7)
                CHECK_EQ(_shardq_crc32c_hw(5, big + off, len), _shardq_crc32c_sw(5, big + off, len));
        CHECK_EQ(_shardq_crc32c_hw(0, big, sizeof big), _shardq_crc32c_sw(0, big, sizeof big));
    } else {
        fprintf(stderr, "note: no SSE4.2 here; hardware path not exercised\n");
    }
    /* Hash: key when present, topic otherwise. */
    CHECK_EQ(shardq_hash("k", 1, "t/x", 3), shardq_crc32c(0, "k", 1));
    CHECK_EQ(shardq_hash("", 0, "t/x", 3), shardq_crc32c(0, "t/x", 3));
    CHECK_EQ(shardq_abi_version(), SHARDQ_ABI_VERSION);
    return CHECK_DONE();
}
