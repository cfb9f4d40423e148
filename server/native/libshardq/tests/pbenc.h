/*
 * pbenc.h - protobuf wire encoders for building test inputs.
 */
#ifndef SHARDQ_PBENC_H
#define SHARDQ_PBENC_H

#include <stdint.h>
#include <string.h>

static inline size_t put_varint(unsigned char *b, size_t at, uint64_t v)
{
    while (v >= 0x80) {
        b[at++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b[at++] = (unsigned char)v;
    return at;
}

static inline size_t put_bytes(unsigned char *b, size_t at, uint32_t field, const void *p, size_t n)
{
    at = put_varint(b, at, (uint64_t)field << 3 | 2);
    at = put_varint(b, at, n);
    memcpy(b + at, p, n);
    return at + n;
}

static inline size_t put_uint(unsigned char *b, size_t at, uint32_t field, uint64_t v)
{
    at = put_varint(b, at, (uint64_t)field << 3);
    return put_varint(b, at, v);
}

#endif
