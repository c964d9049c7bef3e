/* upload.h — streamed request bodies: the per-connection input filter that
 * spools uploads to disk and refuses oversized bodies (prefix upl_).  See
 * upload.c for the design. */
#ifndef ML_UPLOAD_H
#define ML_UPLOAD_H
#include "api.h"
#include <stddef.h>

struct evhttp;
struct evhttp_request;
typedef struct upl_loop upl_loop;

/* Installs the filter on every connection evhttp accepts (evhttp_set_bevcb)
 * and creates <storage>/tmp.  One per event loop; loop thread only.  NULL
 * with err filled on failure. */
upl_loop *upl_loop_new(struct evhttp *http, const cfg *c, char *err, size_t errlen);
void upl_loop_free(upl_loop *u); /* NULL ok; call after evhttp_free */

/* In the request callback: what the filter recorded for this request (a
 * spooled upload or a refused body), now owned by the caller; NULL for an
 * ordinary request. */
api_upload *upl_take(upl_loop *u, struct evhttp_request *ev);

/* Deletes spool files (<storage>/tmp/upl-*.part) not written for
 * older_than_s seconds: what a killed billing-api left behind.  A live upload
 * keeps its file's mtime fresh, so servers sharing the storage directory do
 * not take each other's.  Returns how many were removed, or -1. */
int upl_sweep(const char *storage_dir, long long older_than_s);
#define UPL_SWEEP_AGE_S 3600 /* at billing-api start */

/* mkdir -p with mode for the missing parts.  0, or -1 with errno. */
int upl_mkdirs(const char *path, unsigned mode);
/* fsync of a directory (its entries).  0, or -1 with errno. */
int upl_fsync_dir(const char *path);

#endif
