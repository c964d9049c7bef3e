/* stream.h — streamed replies: a handler on a database thread sends a body
 * of unknown length piece by piece (prefix api_stream_).  See stream.c.
 *
 * Usage, from the handler (database thread), after any api_header calls:
 *
 *     if (api_stream_begin(r, 200, "text/csv; charset=utf-8")) goto gone;
 *     while (more) if (api_stream_write(r, p, n)) goto gone;   // may block
 *     api_stream_end(r);            // or api_stream_fail(r) on an error
 *
 * After api_stream_begin the handler's other reply fields are ignored unless
 * the stream failed before its headers went out (then r's ordinary reply,
 * e.g. from api_db_fail, is sent instead).
 */
#ifndef ML_API_STREAM_H
#define ML_API_STREAM_H
#include "api.h"

#define API_STREAM_MAX_UNSENT (1024 * 1024) /* writers block above this */

/* ---- database thread (the one running the handler) ---- */
/* Starts the reply (status, Content-Type; headers set with api_header).
 * 0, or -1 if the client has gone or memory ran out (stop producing). */
int api_stream_begin(api_req *r, int status, const char *ctype);
/* Queues n bytes; blocks while more than API_STREAM_MAX_UNSENT bytes are
 * queued and unsent.  0, or -1 when the client has gone (stop producing). */
int api_stream_write(api_req *r, const void *p, size_t n);
/* The body is complete: the reply is ended properly once the handler
 * returns.  0, or -1 if the client has gone. */
int api_stream_end(api_req *r);
/* The body cannot be completed: once the handler returns, the connection is
 * aborted (if the headers already went out) so the client cannot mistake a
 * partial body for a complete one. */
void api_stream_fail(api_req *r);

/* ---- loop thread (server.c) ---- */
enum { API_STREAM_SENT = 1, API_STREAM_DROPPED = 2, API_STREAM_NOT_STARTED = 3 };
/* Called by the server when the handler has returned: flushes what is left
 * and ends the reply (or aborts the connection), frees the stream and
 * clears r->stream.  NOT_STARTED: no header went out and the stream failed;
 * the caller sends r's ordinary reply. */
int api_stream_finish(api_req *r);
/* Frees the stream without any I/O (server shutdown). */
void api_stream_discard(api_req *r);

/* server.c: the event base of a loop. */
struct event_base *api_loop_base(api_loop *l);

#endif
