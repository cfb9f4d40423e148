/*
 * internal.h - helpers shared by the library's translation units.
 * Nothing here is exported (see shardq.map); names start with _shardq_.
 */
#ifndef SHARDQ_INTERNAL_H
#define SHARDQ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shardq.h"

static inline uint32_t _shardq_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint16_t _shardq_be16(const unsigned char *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | (unsigned)p[1]);
}

/* 1 when [s, s+len) is well-formed UTF-8 (as Python's strict decoder). */
int _shardq_utf8_valid(const unsigned char *s, size_t len);

/* Both CRC32C implementations, exposed for the unit tests. */
uint32_t _shardq_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t _shardq_crc32c_hw(uint32_t crc, const void *buf, size_t len);
int _shardq_crc32c_hw_available(void);

#endif
