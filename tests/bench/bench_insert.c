/* bench_insert.c — the database half of ingestion alone: db_usage_insert_copy
 * (what the usage.ingest worker runs) beside COPY of the same rows into an
 * empty copy of usage_events, in the same process and the same database
 * (tests/bench/run-ingest runs it; not a test, never run by ctest).  Prefix bi_.
 *
 * DESIGN — The end-to-end benchmark puts HTTP, Redis and the workers on the
 * same two cores as PostgreSQL; this one takes them away, so the figure is
 * the price of the data model itself: claiming each event id in the
 * exactly-once ledger, storing the event in its month's partition and adding
 * it to the 15-minute and hourly rollups, against a bare COPY that does none
 * of this.  Both sides load the same rows in transactions of BATCH rows; the
 * COPY side first (into PEER_TABLE, made by the caller), then ours.  Wall
 * seconds and the backend's CPU seconds (/proc/PID/stat, same machine) are
 * reported for each.
 *
 * Usage: bench_insert DB_URL COPY_TSV ORG_ID BATCH PEER_TABLE SHAPE
 *   COPY_TSV: ingest_gen.py's copy.tsv (org, customer, metric, event_id,
 *   quantity, time); ORG_ID replaces its organization so the events are new.
 */
#include "fmacros.h"
#include "buf.h"
#include "db.h"
#include "usage.h"
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int64_t bi_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The backend's user + system CPU in clock ticks, or -1. */
static long long bi_cpu(int pid) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    const char *p = strrchr(line, ')');
    if (!p) return -1;
    long long ut = 0, st = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) != 2)
        return -1;
    return ut + st;
}

static char *bi_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf b;
    buf_init(&b);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_add(&b, tmp, n);
    fclose(f);
    if (b.oom) {
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* Moves p past one tab-separated field; returns its start and sets *flen. */
static const char *bi_field(const char **p, size_t *flen) {
    const char *s = *p, *t = s;
    while (*t && *t != '\t' && *t != '\n') t++;
    *flen = (size_t)(t - s);
    *p = *t ? t + 1 : t;
    return s;
}

static int bi_pg(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "[bench] %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: bench_insert DB_URL COPY_TSV ORG_ID BATCH PEER_TABLE SHAPE\n");
        return 2;
    }
    long long org = atoll(argv[3]);
    size_t batch = (size_t)atol(argv[4]), len = 0;
    char *text = bi_slurp(argv[2], &len);
    if (!text || org <= 0 || batch == 0) {
        fprintf(stderr, "[bench] cannot read %s (or bad ORG_ID/BATCH)\n", argv[2]);
        return 1;
    }
    /* Two renderings of each batch: COPY rows for the peer table and
     * db_usage_row_text rows for ours. */
    size_t nb = 0, cap = 0, rows = 0;
    buf *peer = NULL, *ours = NULL;
    /* ingest_gen.py writes every time in one format: text order is time order */
    char tmin[40] = "", tmax[40] = "";
    const char *p = text, *end = text + len;
    while (p < end) {
        if (rows % batch == 0) {
            if (nb == cap) {
                cap = cap ? cap * 2 : 64;
                buf *a = realloc(peer, cap * sizeof *a);
                if (a) peer = a;
                buf *b = a ? realloc(ours, cap * sizeof *b) : NULL;
                if (!b) {
                    fprintf(stderr, "[bench] out of memory\n");
                    return 1;
                }
                ours = b;
            }
            buf_init(&peer[nb]);
            buf_init(&ours[nb]);
            nb++;
        }
        size_t l[6];
        const char *f[6];
        for (int i = 0; i < 6; i++) f[i] = bi_field(&p, &l[i]);
        if (l[5] == 0 || l[5] >= sizeof tmin) {
            fprintf(stderr, "[bench] line %zu: no time\n", rows + 1);
            return 1;
        }
        char t[40];
        memcpy(t, f[5], l[5]);
        t[l[5]] = 0;
        if (!*tmin || strcmp(t, tmin) < 0) memcpy(tmin, t, sizeof t);
        if (strcmp(t, tmax) > 0) memcpy(tmax, t, sizeof t);
        buf *a = &peer[nb - 1], *b = &ours[nb - 1];
        buf_printf(a, "%lld\t%.*s\t%.*s\t%.*s\t%.*s\t%.*s\n", org, (int)l[1], f[1], (int)l[2], f[2],
                   (int)l[3], f[3], (int)l[4], f[4], (int)l[5], f[5]);
        buf_printf(b, "%.*s\t%.*s\t%.*s\t%.*s\t%.*s\t\\N\n", (int)l[1], f[1], (int)l[2], f[2],
                   (int)l[3], f[3], (int)l[4], f[4], (int)l[5], f[5]);
        if (a->oom || b->oom) {
            fprintf(stderr, "[bench] out of memory\n");
            return 1;
        }
        rows++;
    }

    db *d = db_open(argv[1]);
    if (!d) {
        fprintf(stderr, "[bench] cannot connect\n");
        return 1;
    }
    PGconn *c = db_conn(d);
    int pid = PQbackendPID(c);
    char sql[512];
    snprintf(sql, sizeof sql,
             "COPY %.200s (org_id, customer_id, metric_id, event_id, quantity, occurred_at) "
             "FROM STDIN",
             argv[5]);

    /* the peer: COPY, one transaction per batch */
    long long c0 = bi_cpu(pid);
    int64_t t0 = bi_now_us();
    for (size_t i = 0; i < nb; i++) {
        if (bi_pg(c, "BEGIN")) return 1;
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COPY_IN) {
            fprintf(stderr, "[bench] COPY: %s", PQerrorMessage(c));
            return 1;
        }
        PQclear(r);
        if (PQputCopyData(c, peer[i].p, (int)peer[i].len) != 1 || PQputCopyEnd(c, NULL) != 1) {
            fprintf(stderr, "[bench] COPY data: %s", PQerrorMessage(c));
            return 1;
        }
        while ((r = PQgetResult(c)) != NULL) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                fprintf(stderr, "[bench] COPY end: %s", PQerrorMessage(c));
                return 1;
            }
            PQclear(r);
        }
        if (bi_pg(c, "COMMIT")) return 1;
    }
    int64_t copy_us = bi_now_us() - t0;
    long long copy_cpu = bi_cpu(pid) - c0;

    /* ours: the worker's insert path, same batches */
    c0 = bi_cpu(pid);
    t0 = bi_now_us();
    long long inserted = 0;
    for (size_t i = 0; i < nb; i++) {
        db_usage_chunk ch = {.org_id = org, .text = ours[i].p, .len = ours[i].len};
        db_err e;
        db_usage_result out;
        if (db_usage_insert_copy(d, &e, &ch, 1, tmin, tmax, &out)) {
            fprintf(stderr, "[bench] insert: %s\n", e.msg);
            return 1;
        }
        inserted += out.inserted;
    }
    int64_t ours_us = bi_now_us() - t0;
    long long ours_cpu = bi_cpu(pid) - c0;
    double tick = (double)sysconf(_SC_CLK_TCK); /* report figures, not quantities */
    printf(
        "{\"bench\": \"ingest_db_path\", \"shape\": \"%s\", \"events\": %zu, \"inserted\": %lld, "
        "\"batch\": %zu, \"copy_seconds\": %.2f, \"copy_backend_cpu_seconds\": %.2f, "
        "\"ours_seconds\": %.2f, \"ours_backend_cpu_seconds\": %.2f, \"ratio_vs_copy\": %.3f}\n",
        argv[6], rows, inserted, batch, (double)copy_us / 1e6, (double)copy_cpu / tick,
        (double)ours_us / 1e6, (double)ours_cpu / tick, (double)copy_us / (double)ours_us);
    for (size_t i = 0; i < nb; i++) {
        buf_free(&peer[i]);
        buf_free(&ours[i]);
    }
    free(peer);
    free(ours);
    free(text);
    db_close(d);
    return inserted == (long long)rows ? 0 : 1;
}
