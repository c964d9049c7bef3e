/* rnd.c — libsodium wrappers for tokens, hashes and passwords.  See rnd.h. */
#include "fmacros.h"
#include "rnd.h"
#include <sodium.h>

int rnd_init(void) { return sodium_init() < 0 ? -1 : 0; }

void rnd_token(const char *prefix, char out[RND_TOKEN_MAX]) {
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    size_t pl = strlen(prefix);
    if (pl > 8) pl = 8;
    memcpy(out, prefix, pl);
    sodium_bin2base64(out + pl, RND_TOKEN_MAX - pl, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

void rnd_sha256_hex(const void *s, size_t len, char out[RND_HASH_HEX]) {
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, s, len);
    sodium_bin2hex(out, RND_HASH_HEX, h, sizeof h);
}

void rnd_uuid(char out[RND_UUID_MAX]) {
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, RND_UUID_MAX,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

void rnd_hex16(char out[33]) {
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(out, 33, b, sizeof b);
}

int rnd_password_hash(const char *pw, char out[RND_PWHASH_MAX]) {
    _Static_assert(RND_PWHASH_MAX >= crypto_pwhash_STRBYTES, "pwhash buffer");
    return crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0
               ? 0
               : -1;
}

int rnd_password_verify(const char *hash, const char *pw) {
    return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
}
