/* mpart.h — streaming multipart/form-data parser (prefix mp_).
 *
 * DESIGN — A pure push parser (RFC 7578 / RFC 2046): the caller feeds the
 * de-chunked request body in pieces of any size; a callback receives, per
 * part, its headers (name, filename, content type), its content as spans and
 * its end.  The delimiter ("CRLF--boundary") may be split across any two
 * feeds: bytes that could start a delimiter are held back (at most the
 * delimiter's length, inside the parser) and released as content once they
 * turn out not to be one.  Bare LF line ends are accepted as well as CRLF.
 * Memory is fixed (no allocation).  No I/O: api/upload.c writes the content
 * of the part named "file" to a spool file.
 */
#ifndef ML_MPART_H
#define ML_MPART_H
#include <stdbool.h>
#include <stddef.h>

#define MP_BOUNDARY_MAX 70
#define MP_HEAD_MAX     8192

enum { MP_PART_BEGIN = 1, MP_PART_DATA, MP_PART_END };

typedef struct mp_part {
    const char *name;         /* "" when the part has no name */
    const char *filename;     /* NULL when the part has no filename */
    const char *content_type; /* "" when absent */
} mp_part;

/* what: MP_PART_*; data/len only for MP_PART_DATA.  Non-zero return stops
 * the parser (mp_feed then returns -1 with err "stopped"). */
typedef int (*mp_cb)(void *ud, int what, const mp_part *part, const char *data, size_t len);

typedef struct mp_parser {
    char delim[MP_BOUNDARY_MAX + 4]; /* "\n--" boundary */
    size_t dlen;
    int state;
    size_t match;  /* bytes of delim matched so far */
    bool cr;       /* a CR held back right before the match */
    bool delim_cr; /* the matched delimiter had a CR */
    int after;     /* state after a delimiter */
    bool in_part;  /* a part is open (between BEGIN and END) */
    char head[MP_HEAD_MAX];
    size_t head_len;
    char name[256], filename[256], ctype[128];
    bool has_filename;
    const char *err;
} mp_parser;

/* The boundary parameter of a multipart/form-data Content-Type (quoted or
 * not) into out.  0 ok; -1 if ct is not multipart/form-data or has no valid
 * boundary (1-70 characters). */
int mp_boundary(const char *ct, size_t ctlen, char *out, size_t cap);
/* 0 ok, -1 if the boundary is empty or too long. */
int mp_init(mp_parser *p, const char *boundary);
/* 0 ok, -1 on malformed input (p->err), sticky. */
int mp_feed(mp_parser *p, const char *buf, size_t len, mp_cb cb, void *ud);
/* At the end of the body: 0 if the closing delimiter was seen, else -1. */
int mp_finish(mp_parser *p);

#endif
