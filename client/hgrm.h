/* hgrm: a histogram's percentile distribution in the text layout of HdrHistogram's
 * outputPercentileDistribution (the .hgrm files its plotter reads): value in
 * milliseconds, percentile as a fraction, the count at or below it, 1/(1-percentile);
 * percentile steps that halve the distance to 100% every 5 lines; then the #[Mean ...],
 * #[Max ...] and #[Buckets ...] footer. Values are wharf's percentile values (hist.h:
 * the bucket's midpoint, clamped to the exact min and max). */
#ifndef WHARF_HGRM_H
#define WHARF_HGRM_H

#include <stdio.h>

#include "../common/hist.h"

/* Write h's distribution to f. */
void hgrm_print(FILE *f, const struct hist *h);
/* The same into the file path (created or truncated). 0, or -1 with errno. */
int report_hgrm(const char *path, const struct hist *h);

#endif
