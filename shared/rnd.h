/* rnd.h — secrets, ids and hashes via libsodium (prefix rnd_).
 *
 * DESIGN — Tokens are 256-bit random values, shown to clients once as
 * prefix + base64url (no padding) and stored only as lowercase hex SHA-256.
 * rnd_init must be called once at start-up (sodium_init) before any thread
 * uses the others; afterwards everything is thread-safe.
 */
#ifndef ML_RND_H
#define ML_RND_H
#include <stddef.h>

#define RND_TOKEN_MAX 64 /* prefix (<= 8) + 43 base64url chars + NUL */
#define RND_HASH_HEX  65 /* 64 hex chars + NUL */
#define RND_UUID_MAX  37

int rnd_init(void); /* 0 ok, -1 failure */
/* prefix + base64url(32 random bytes). */
void rnd_token(const char *prefix, char out[RND_TOKEN_MAX]);
/* Lowercase hex SHA-256 of s[0..len). */
void rnd_sha256_hex(const void *s, size_t len, char out[RND_HASH_HEX]);
/* Random (v4) UUID text. */
void rnd_uuid(char out[RND_UUID_MAX]);
/* 16 random bytes as 32 hex chars (request ids). */
void rnd_hex16(char out[33]);

/* argon2id (crypto_pwhash_str, interactive limits); 0 ok, -1 out of memory. */
#define RND_PWHASH_MAX 128
int rnd_password_hash(const char *pw, char out[RND_PWHASH_MAX]);
/* 1 match, 0 no match. Constant-time in the password. */
int rnd_password_verify(const char *hash, const char *pw);

#endif
