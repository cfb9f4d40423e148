/*
 * check.h - minimal assertions for the standalone C tests.
 * A test binary exits 0 when every check passed, 1 otherwise, 77 to skip.
 */
#ifndef SHARDQ_CHECK_H
#define SHARDQ_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                    \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                           \
    do {                                                                         \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);          \
        if (check_a_ != check_b_) {                                              \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,  \
                    __LINE__, #a, #b, check_a_, check_b_);                       \
            check_failures++;                                                    \
        }                                                                        \
    } while (0)

#define CHECK_DONE() (check_failures ? 1 : 0)

#endif
