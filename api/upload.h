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

/* mkdir -p with mode for the missing parts.  0, or -1 with errno. */
int upl_mkdirs(const char *path, unsigned mode);
/* fsync of a directory (its entries).  0, or -1 with errno. */
int upl_fsync_dir(const char *path);

#endif
