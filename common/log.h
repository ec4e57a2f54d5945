/* log: one line per event on stderr, with a level.
 *
 * Lines are built whole and written with one write(2), so lines from different
 * threads never interleave. Under systemd-journald (stderr is the journal, as
 * $JOURNAL_STREAM says) lines carry a "<N>" syslog priority and no timestamp.
 * The level is the one piece of process-wide mutable state: an atomic int that the
 * main thread may change on reload and every thread reads with relaxed loads. */
#ifndef WHARF_LOG_H
#define WHARF_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "debug", "info", "warn", "error", "off"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

static inline int log_enabled(enum log_level level) { return level >= log_get_level(); }

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_enabled(LOG_INFO)) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...) do { if (log_enabled(LOG_WARN)) log_msg(LOG_WARN, __VA_ARGS__); } while (0)
#define log_error(...) do { if (log_enabled(LOG_ERROR)) log_msg(LOG_ERROR, __VA_ARGS__); } while (0)

#endif
