/* units: numbers with units, as flags and config files write them. */
#ifndef WHARF_UNITS_H
#define WHARF_UNITS_H

#include <stdint.h>

/* "4096", "64K", "1M", "2G" (binary multiples; also "KiB"/"k"). 0 or -1. */
int parse_size(const char *s, uint64_t *out);
/* "10" (seconds), "10s", "500ms", "2m", "1h", "1.5s". Milliseconds; 0 or -1. */
int parse_duration_ms(const char *s, uint64_t *out);
/* A plain non-negative integer within [min, max]. 0 or -1. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
