/* hframe.h — incremental HTTP/1.1 request framing (prefix hf_).
 *
 * DESIGN — A pure push parser: the caller feeds whatever bytes arrived, in
 * pieces of any size, and gets back one event per call: a complete request
 * head (request line + headers, at most HF_HEAD_MAX bytes, kept in the parser
 * with the position of every header), a span of body bytes (Content-Length
 * bodies as they are, chunked bodies already de-chunked; the span points
 * into the caller's buffer), the end of the request, or an error.  After the
 * end it starts over with the next (pipelined) request on the same
 * connection.  It knows nothing of sockets: api/upload.c drives it.
 *
 * What it accepts: CRLF or bare LF line ends; empty lines before a request
 * line; Content-Length (repeated only with the same value) or
 * Transfer-Encoding: chunked (HTTP/1.1 only) with chunk extensions and
 * trailers.  What it refuses (HF_ERROR, sticky): obsolete line folding,
 * Content-Length together with Transfer-Encoding, any other transfer
 * coding, malformed chunk sizes, heads or trailers over HF_HEAD_MAX.
 */
#ifndef ML_HFRAME_H
#define ML_HFRAME_H
#include <stdbool.h>
#include <stddef.h>

#define HF_HEAD_MAX    (64 * 1024)
#define HF_MAX_HEADERS 128

enum { HF_NEED_MORE = 0, HF_HEAD, HF_DATA, HF_DONE, HF_ERROR };

typedef struct hf_header {
    size_t name, name_len, value, value_len; /* offsets into hf_parser.head */
} hf_header;

typedef struct hf_parser {
    int state;
    /* the head as received (NUL-terminated), valid from HF_HEAD to HF_DONE */
    char *head;
    size_t head_len, head_cap;
    char method[16];
    size_t target, target_len; /* offsets into head */
    int minor;                 /* HTTP/1.<minor> */
    hf_header hdr[HF_MAX_HEADERS];
    int nhdr;
    long long content_length; /* -1 = none */
    bool chunked;
    long long body_total; /* body bytes (de-chunked) delivered so far */
    /* internals */
    int nl;              /* head: line-end state */
    long long remaining; /* Content-Length bytes left / bytes left in chunk */
    int cstate;          /* chunk framing state */
    int hexdigits;
    size_t line_len; /* chunk-size line / trailer bytes so far */
    const char *err; /* after HF_ERROR */
} hf_parser;

void hf_init(hf_parser *p);
void hf_free(hf_parser *p); /* releases the head buffer; p may be reused after hf_init */

/* Feeds buf[0..len).  Returns how many bytes were consumed and stores one of
 * HF_* in *ev:
 *   HF_NEED_MORE  everything was consumed, nothing to report;
 *   HF_HEAD       a head is complete (fields above);
 *   HF_DATA       *data, *dlen: body bytes (pointing into buf);
 *   HF_DONE       the request is complete (may consume 0 bytes: call again
 *                 even with len 0 after HF_HEAD);
 *   HF_ERROR      p->err says what; every later call fails too.
 * Returns -1 only when out of memory (with HF_ERROR). */
long hf_feed(hf_parser *p, const char *buf, size_t len, int *ev, const char **data, size_t *dlen);

/* First header `name` (case-insensitive): value (not NUL-terminated) and its
 * length, or NULL. */
const char *hf_get(const hf_parser *p, const char *name, size_t *vlen);
/* Case-insensitive comparison of a header value with s (whole value). */
bool hf_value_is(const char *v, size_t vlen, const char *s);

#endif
