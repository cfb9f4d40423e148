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

/* Append one record: u32 length, u32 crc (zero, to be filled), body. */
static size_t put_record(unsigned char *out, const char *body, uint32_t body_len)
{
    uint32_t length = body_len + 4;
    for (int i = 0; i < 4; i++)
        out[i] = (unsigned char)(length >> (8 * i));
    memset(out + 4, 0, 4);
    memcpy(out + 8, body, body_len);
    return 8 + body_len;
}

static void records(void)
{
    unsigned char buf[256];
    size_t end = 99, n = 0;
    n += put_record(buf + n, "123456789", 9);
    size_t second = n;
    n += put_record(buf + n, "hello, segment", 14);
    size_t third = n;
    n += put_record(buf + n, "", 0);
    CHECK_EQ(shardq_crc32c_records(buf, n, 4, SHARDQ_CRC_FILL, &end), SHARDQ_OK);
    CHECK_EQ(end, n);
    /* The filled CRC is the CRC32C of the body, little-endian. */
    CHECK_EQ(buf[4] | buf[5] << 8 | buf[6] << 16 | (uint32_t)buf[7] << 24, 0xE3069283u);
    CHECK_EQ(shardq_crc32c_records(buf, n, 4, 0, &end), SHARDQ_OK);
    CHECK_EQ(end, n);
    /* A cut record stops the walk without error at its start. */
    for (size_t cut = third + 1; cut < n; cut++) {
        CHECK_EQ(shardq_crc32c_records(buf, cut, 4, 0, &end), SHARDQ_OK);
        CHECK_EQ(end, third);
    }
    CHECK_EQ(shardq_crc32c_records(buf, second + 3, 4, 0, &end), SHARDQ_OK);
    CHECK_EQ(end, second);
    /* A flipped bit is reported at its record. */
    buf[second + 10] ^= 0x20;
    CHECK_EQ(shardq_crc32c_records(buf, n, 4, 0, &end), SHARDQ_EBADMSG);
    CHECK_EQ(end, second);
    buf[second + 10] ^= 0x20;
    /* A length below the minimum is malformed. */
    CHECK_EQ(shardq_crc32c_records(buf, n, 14, 0, &end), SHARDQ_EBADMSG);
    CHECK_EQ(end, 0u);
    CHECK_EQ(shardq_crc32c_records(NULL, 0, 4, 0, &end), SHARDQ_OK);
    CHECK_EQ(end, 0u);
    CHECK_EQ(shardq_crc32c_records(buf, n, 3, 0, &end), SHARDQ_EINVAL);
    CHECK_EQ(shardq_crc32c_records(buf, n, 4, 2, &end), SHARDQ_EINVAL);
    CHECK_EQ(shardq_crc32c_records(buf, n, 4, 0, NULL), SHARDQ_EINVAL);
}

/* Three buffers at once equal each one alone: equal and unequal lengths,
 * shorter and longer than 8 bytes, any alignment. */
static void three(void)
{
    static unsigned char data[3 * 512];
    srand(11);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)rand();
    size_t lengths[][3] = {{0, 0, 0}, {1, 7, 8}, {130, 130, 130}, {131, 129, 200},
                           {500, 3, 64}, {17, 400, 9}, {8, 16, 24}};
    for (size_t t = 0; t < sizeof lengths / sizeof lengths[0]; t++)
        for (size_t off = 0; off < 3; off++) {
            const unsigned char *buf[3] = {data + off, data + 512 + 2 * off, data + 1024 + 5};
            uint32_t crc[3];
            _shardq_crc32c_three(buf, lengths[t], crc);
            for (int i = 0; i < 3; i++)
                CHECK_EQ(crc[i], _shardq_crc32c_sw(0, buf[i], lengths[t][i]));
        }
}

int main(void)
{
    vectors(_shardq_crc32c_sw);
    vectors(shardq_crc32c);
    if (_shardq_crc32c_hw_available()) {
        vectors(_shardq_crc32c_hw);
        CHECK(shardq_features() & SHARDQ_FEATURE_CRC32C_HW);
        static unsigned char big[4 * 3 * 1024 + 99]; /* several rounds of the three lanes */
        srand(7);
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (unsigned char)rand();
        for (size_t off = 0; off < 9; off++)
            for (size_t len = 0; len < 300; len += 7)
                CHECK_EQ(_shardq_crc32c_hw(5, big + off, len), _shardq_crc32c_sw(5, big + off, len));
        CHECK_EQ(_shardq_crc32c_hw(0, big, sizeof big), _shardq_crc32c_sw(0, big, sizeof big));
        for (size_t len = 3 * 1024 - 9; len < sizeof big; len += 1021)
            CHECK_EQ(_shardq_crc32c_hw(9, big + 3, len - 3), _shardq_crc32c_sw(9, big + 3, len - 3));
    } else {
        fprintf(stderr, "note: no SSE4.2 here; hardware path not exercised\n");
    }
    records();
    three();
    /* Hash: key when present, topic otherwise. */
    CHECK_EQ(shardq_hash("k", 1, "t/x", 3), shardq_crc32c(0, "k", 1));
    CHECK_EQ(shardq_hash("", 0, "t/x", 3), shardq_crc32c(0, "t/x", 3));
    CHECK_EQ(shardq_abi_version(), SHARDQ_ABI_VERSION);
    return CHECK_DONE();
}
