/* match.c — route pattern matching (api_match_path, see api.h).
 *
 * DESIGN — Pure: walks pattern and path together; literal characters must be
 * equal, "{name}" takes one non-empty segment up to the next '/', "{*}" takes
 * the rest.  Parameters are percent-decoded after the split, so an encoded
 * "%2F" inside a parameter never changes which route matches.
 */
#include "fmacros.h"
#include "api.h"
#include <event2/http.h>
#include <stdlib.h>

bool api_match_path(const char *pattern, const char *path, char *pv[API_MAX_PARAMS], int *npv) {
    const char *p = pattern, *q = path;
    int n = 0;
    char *tmp[API_MAX_PARAMS];
    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (!close) goto fail;
            bool rest = close - p == 2 && p[1] == '*';
            size_t seg = rest ? strlen(q) : strcspn(q, "/");
            if ((!rest && seg == 0) || n == API_MAX_PARAMS) goto fail;
            char *raw = strndup(q, seg);
            char *dec = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
            free(raw);
            if (!dec) goto fail;
            tmp[n++] = dec;
            q += seg;
            p = close + 1;
            continue;
        }
        if (*p != *q) goto fail;
        p++;
        q++;
    }
    if (*q) goto fail;
    for (int i = 0; i < n; i++) pv[i] = tmp[i];
    *npv = n;
    return true;
fail:
    for (int i = 0; i < n; i++) free(tmp[i]);
    return false;
}
