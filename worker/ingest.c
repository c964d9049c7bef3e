/* ingest.c — the usage.ingest job: accepted JSON usage into PostgreSQL.
 *
 * DESIGN — billing-api validated and resolved every event before it answered
 * 202, and wrote them as db_usage_row_text rows into the job payload
 * {"v":1, "min", "max", "rows"}.  The worker reserves up to a batch of these
 * jobs at once and hands them all to one db_usage_insert_copy: one COPY into
 * the staging table, one statement that claims the (org, event_id) ledger
 * with ON CONFLICT DO NOTHING, stores the new rows and adds exactly those to
 * the 15-minute rollup, one commit.  A retried job (worker killed between
 * commit and ack, lease expired) finds its event ids claimed and adds
 * nothing: exactly once.  Jobs of several organizations mix freely (each row
 * carries its job's org).
 *
 * Partitions: the insert creates the months its batch touches; in addition
 * the current and next month are made once a day ahead of time, so the
 * first events of a month do not pay for DDL.
 */
#include "fmacros.h"
#include "handlers.h"
#include "log.h"
#include "ts.h"
#include "usage.h"
#include <stdlib.h>

static const char *const k_fields[] = {"v", "min", "max", "rows", NULL};

static int64_t g_ahead_day = -1;

/* Once a day: partitions for this month and the next (best effort). */
static void partitions_ahead(db *d) {
    int64_t now = ts_now(), day = now / (86400LL * 1000000);
    if (day == g_ahead_day) return;
    char a[TS_FMT_MAX], b[TS_FMT_MAX];
    db_err e;
    if (ts_format(now, a, sizeof a) < 0 || ts_format(now + 40LL * 86400 * 1000000, b, sizeof b) < 0)
        return;
    if (DB_CMD(d, &e, "SELECT ml_usage_ensure_partitions($1::timestamptz, $2::timestamptz)", a,
               b) == 0)
        g_ahead_day = day;
    else
        LOG_KV(LOG_WARN, "cannot create usage partitions ahead", LF_S("error", e.msg));
}

/* Checks one payload; fills ch and the time bounds (as microseconds). */
static bool check_payload(const jq_job *j, const json_t *p, db_usage_chunk *ch, int64_t *mn,
                          int64_t *mx, wk_result *res) {
    if (!wk_payload_only(p, k_fields, res)) return false;
    const json_t *rows = json_object_get(p, "rows");
    const char *a = json_string_value(json_object_get(p, "min"));
    const char *b = json_string_value(json_object_get(p, "max"));
    if (json_integer_value(json_object_get(p, "v")) != 1 || !json_is_string(rows) || !a || !b ||
        ts_parse(a, strlen(a), mn) || ts_parse(b, strlen(b), mx) || *mn > *mx || j->org <= 0) {
        wk_fail(res, WK_PERMANENT, "job %s: not a usage.ingest payload (v 1, min, max, rows)",
                j->id);
        return false;
    }
    ch->org_id = j->org;
    ch->text = json_string_value(rows);
    ch->len = json_string_length(rows);
    if (ch->len && ch->text[ch->len - 1] != '\n') {
        wk_fail(res, WK_PERMANENT, "job %s: rows must end with a newline", j->id);
        return false;
    }
    return true;
}

wk_status wk_jobs_usage_ingest(wk_ctx *ctx, const jq_job *const *jobs,
                               const json_t *const *payloads, size_t n, wk_result *res) {
    db_usage_chunk *ch = calloc(n, sizeof *ch);
    if (!ch) return wk_fail(res, WK_RETRY, "out of memory");
    int64_t mn = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t a, b;
        if (ML_NEVER(!check_payload(jobs[i], payloads[i], &ch[i], &a, &b, res))) {
            free(ch); /* wk_check_usage_ingest let it through */
            return WK_PERMANENT;
        }
        if (i == 0 || a < mn) mn = a;
        if (i == 0 || b > mx) mx = b;
    }
    partitions_ahead(ctx->db);
    char a[TS_FMT_MAX], b[TS_FMT_MAX];
    db_err e;
    db_usage_result out;
    int rc = ts_format(mn, a, sizeof a) < 0 || ts_format(mx, b, sizeof b) < 0
                 ? -2
                 : db_usage_insert_copy(ctx->db, &e, ch, n, a, b, &out);
    free(ch);
    if (rc == -2) return wk_fail(res, WK_PERMANENT, "event times out of range");
    if (rc) return wk_fail_db(res, &e, "usage insert");
    LOG_KV(LOG_DEBUG, "usage stored", LF_I("jobs", (long long)n), LF_I("rows", out.rows),
           LF_I("inserted", out.inserted), LF_I("duplicates", out.duplicates));
    return wk_ok_json(res,
                      json_pack("{s:I, s:I, s:I, s:I}", "batch_jobs", (json_int_t)n, "batch_rows",
                                (json_int_t)out.rows, "batch_inserted", (json_int_t)out.inserted,
                                "batch_duplicates", (json_int_t)out.duplicates));
}

bool wk_check_usage_ingest(const jq_job *j, const json_t *payload, wk_result *res) {
    db_usage_chunk ch;
    int64_t a, b;
    return check_payload(j, payload, &ch, &a, &b, res);
}

wk_status wk_job_usage_ingest(wk_ctx *ctx, wk_result *res) {
    const jq_job *j = ctx->job;
    const json_t *p = ctx->payload;
    if (!wk_check_usage_ingest(j, p, res)) return WK_PERMANENT;
    return wk_jobs_usage_ingest(ctx, &j, &p, 1, res);
}
