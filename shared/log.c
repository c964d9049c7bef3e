/* log.c — JSON-lines logger.  See log.h. */
#include "fmacros.h"
#include "log.h"
#include "buf.h"
#include "ts.h"
#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>
#include <errno.h>

static atomic_int g_level = LOG_INFO;
static char g_comp[32] = "meterline";
static const char *const g_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *name) {
    for (int i = 0; i < (int)ML_ARRAY_LEN(g_names); i++)
        if (strcmp(name, g_names[i]) == 0) return i;
    return -1;
}

void log_init(int level, const char *component) {
    atomic_store(&g_level, level);
    snprintf(g_comp, sizeof g_comp, "%s", component);
}

bool log_enabled(int level) { return level >= atomic_load(&g_level); }

static void write_all(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_emit(int level, const char *msg, const log_field *f, size_t n) {
    if (!log_enabled(level)) return;
    char tsb[TS_FMT_MAX];
    if (ts_format(ts_now(), tsb, sizeof tsb) < 0) tsb[0] = '\0';
    buf h;
    buf_init(&h);
    buf *o = &h;
    buf_printf(o, "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"%s\",\"msg\":\"", tsb,
               g_names[level < 0   ? 0
                       : level > 3 ? 3
                                   : level],
               g_comp);
    buf_add_json_escaped(o, msg, strlen(msg));
    buf_addc(o, '"');
    for (size_t i = 0; i < n; i++) {
        if (!f[i].k) continue;
        buf_adds(o, ",\"");
        buf_add_json_escaped(o, f[i].k, strlen(f[i].k));
        buf_adds(o, "\":");
        if (f[i].t == 'i') {
            buf_printf(o, "%lld", f[i].i);
        } else if (f[i].t == 'j' && f[i].s) {
            buf_adds(o, f[i].s);
        } else if (f[i].s) {
            buf_addc(o, '"');
            buf_add_json_escaped(o, f[i].s, strlen(f[i].s));
            buf_addc(o, '"');
        } else {
            buf_adds(o, "null");
        }
    }
    buf_adds(o, "}\n");
    if (o->oom) {
        static const char m[] = "{\"level\":\"error\",\"msg\":\"log line lost: out of memory\"}\n";
        write_all(m, sizeof m - 1);
    } else {
        write_all(o->p, o->len);
    }
    buf_free(&h);
}

void log_msg(int level, const char *fmt, ...) {
    if (!log_enabled(level)) return;
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    log_emit(level, m, NULL, 0);
}
