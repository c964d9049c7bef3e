/* repo.c — helpers shared by the repositories (see repo_util.h). */
#include "fmacros.h"
#include "repo_util.h"
#include "jx.h"
#include <ctype.h>
#include <stdlib.h>

int repo_oom(db_err *e) {
    memset(e, 0, sizeof *e);
    snprintf(e->msg, sizeof e->msg, "out of memory");
    return REPO_ERR;
}

int repo_one(PGresult *r, db_err *e, json_t **out) {
    if (!r) return REPO_ERR;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return REPO_NOT_FOUND;
    }
    *out = db_row_json(r, 0);
    PQclear(r);
    return *out ? REPO_OK : repo_oom(e);
}

int repo_page(PGresult *r, db_err *e, int limit, const char *key_col, json_t **rows, char **next) {
    *next = NULL;
    if (!r) return REPO_ERR;
    int n = PQntuples(r);
    json_t *a = json_array();
    if (!a) {
        PQclear(r);
        return repo_oom(e);
    }
    for (int i = 0; i < n && i < limit; i++) {
        json_t *o = db_row_json(r, i);
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            PQclear(r);
            return repo_oom(e);
        }
    }
    if (n > limit) {
        int col = PQfnumber(r, key_col);
        if (col >= 0) {
            *next = strdup(PQgetvalue(r, limit - 1, col));
            if (!*next) {
                json_decref(a);
                PQclear(r);
                return repo_oom(e);
            }
        }
    }
    PQclear(r);
    *rows = a;
    return REPO_OK;
}

void repo_set_field(repo_field *f, const char *field, const char *message) {
    if (!f) return;
    snprintf(f->field, sizeof f->field, "%s", field);
    snprintf(f->message, sizeof f->message, "%s", message);
}

bool repo_is_uuid(const char *s) {
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (strlen(s) != sizeof shape - 1) return false;
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return false;
    }
    return true;
}

const char *repo_text(const json_t *obj, const char *key, char *buf, size_t cap) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return NULL;
    if (json_is_true(v)) return "true";
    if (json_is_false(v)) return "false";
    const char *num = jx_number_text(v, buf, cap);
    if (num) return num;
    return json_string_value(v);
}

bool repo_split_cursor(const char *c, char us[24], char id[40]) {
    const char *colon = strchr(c, ':');
    if (!colon) return false;
    size_t n = (size_t)(colon - c);
    if (n == 0 || n > 18 || strspn(c, "0123456789") != n || !repo_is_uuid(colon + 1)) return false;
    memcpy(us, c, n);
    us[n] = '\0';
    snprintf(id, 40, "%s", colon + 1);
    return true;
}
