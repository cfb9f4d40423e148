/*
 * Bounded random-input driver for the fuzz targets when libFuzzer (clang)
 * is not available: feeds random and mutated frame-like inputs for the
 * number of seconds given as argv[1].
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10.0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned seed = (unsigned)t0.tv_nsec;
    printf("random driver: seed %u, %.0f s\n", seed, seconds);
    uint8_t buf[4096];
    unsigned long runs = 0;
    for (;;) {
        size_t size = (size_t)(rand_r(&seed) % sizeof buf);
        for (size_t i = 0; i < size; i++) {
            /* Bias towards small values so lengths and tags are often plausible. */
            unsigned r = (unsigned)rand_r(&seed);
            buf[i] = (uint8_t)((r & 3) ? r % 16 : r >> 8);
        }
        uint8_t *copy = malloc(size ? size : 1); /* exact size: ASan sees overreads */
        for (size_t i = 0; i < size; i++)
            copy[i] = buf[i];
        LLVMFuzzerTestOneInput(copy, size);
        free(copy);
        if (++runs % 1024 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
                break;
        }
    }
    printf("random driver: %lu runs, no failure\n", runs);
    return 0;
}
