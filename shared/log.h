/* log.h — JSON-lines logging on stderr (prefix log_).
 *
 * DESIGN — One line per event: {"ts","level","comp","msg", ...fields}.  A line
 * is built in a local buffer and written with one write(2) so lines from
 * threads and processes never interleave.  Thread-safe; the level and the
 * component name are set once at start-up by log_init.
 */
#ifndef ML_LOG_H
#define ML_LOG_H
#include <stdbool.h>
#include <stddef.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

typedef struct log_field {
    const char *k;
    char t; /* 's' string, 'i' integer, 'j' raw JSON */
    const char *s;
    long long i;
} log_field;

#define LF_S(key, v) ((log_field){(key), 's', (v), 0})
#define LF_I(key, v) ((log_field){(key), 'i', NULL, (long long)(v)})
#define LF_J(key, v) ((log_field){(key), 'j', (v), 0})

/* Returns -1 for an unknown level name. */
int log_level_parse(const char *name);
void log_init(int level, const char *component);
bool log_enabled(int level);
void log_emit(int level, const char *msg, const log_field *f, size_t n);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_KV(level, msg, ...)                                                                    \
    do {                                                                                           \
        if (log_enabled(level)) {                                                                  \
            const log_field ml_lf_[] = {__VA_ARGS__};                                              \
            log_emit((level), (msg), ml_lf_, sizeof ml_lf_ / sizeof ml_lf_[0]);                    \
        }                                                                                          \
    } while (0)

#endif
