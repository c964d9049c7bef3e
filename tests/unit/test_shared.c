/* test_shared.c — the small pure modules of shared/: cfg, buf, cur, rnd, log
 * levels, and queue/'s Redis URL parser. */
#include "fmacros.h"
#include "buf.h"
#include "cfg.h"
#include "cur.h"
#include "log.h"
#include "rds.h"
#include "rnd.h"
#include <criterion/criterion.h>
#include <stdlib.h>

static void clear_env(void) {
    static const char *const vars[] = {"BILLING_LISTEN",       "BILLING_DB_THREADS",
                                       "BILLING_LOG_LEVEL",    "BILLING_COOKIE_SECURE",
                                       "BILLING_DATABASE_URL", NULL};
    for (const char *const *v = vars; *v; v++) unsetenv(*v);
}

Test(cfg, defaults_then_env_then_flags) {
    clear_env();
    cfg c;
    char err[256];
    char *argv[] = {"x", NULL};
    cr_assert_eq(cfg_load(&c, 1, argv, 1, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(c.listen, "127.0.0.1:8080");
    cr_expect_eq(c.log_level, LOG_INFO);
    cr_expect(c.db_threads >= 2 && c.db_threads == 2 * c.api_threads, "2 x cores vs cores");
    cr_expect(strstr(c.database_url, "/var/run&port=5433") != NULL, "%s", c.database_url);
    cr_expect(strstr(c.database_url, "@repo") == NULL, "@repo is expanded");

    setenv("BILLING_LISTEN", "127.0.0.1:9000", 1);
    setenv("BILLING_DB_THREADS", "7", 1);
    cr_assert_eq(cfg_load(&c, 1, argv, 1, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(c.listen, "127.0.0.1:9000");
    cr_expect_eq(c.db_threads, 7);

    char *argv2[] = {"x",       "--db-threads", "9", "--listen=0.0.0.0:1",
                     "migrate", "--email",      "a", NULL};
    char *pos[8];
    int npos = 0;
    cr_assert_eq(cfg_load(&c, 7, argv2, 1, pos, &npos, err, sizeof err), 0, "%s", err);
    cr_expect_eq(c.db_threads, 9, "flags override the environment");
    cr_expect_str_eq(c.listen, "0.0.0.0:1");
    cr_assert_eq(npos, 3, "non-config arguments are passed through");
    cr_expect_str_eq(pos[0], "migrate");
    cr_expect_str_eq(pos[1], "--email");
    clear_env();
}

Test(cfg, errors_name_the_variable_or_flag) {
    clear_env();
    cfg c;
    char err[256];
    char *argv[] = {"x", NULL};
    setenv("BILLING_DB_THREADS", "0", 1);
    cr_expect_eq(cfg_load(&c, 1, argv, 1, NULL, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "BILLING_DB_THREADS") && strstr(err, "out of range"), "%s", err);
    setenv("BILLING_DB_THREADS", "12abc", 1);
    cr_expect_eq(cfg_load(&c, 1, argv, 1, NULL, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "expected an integer"), "%s", err);
    unsetenv("BILLING_DB_THREADS");
    setenv("BILLING_LOG_LEVEL", "loud", 1);
    cr_expect_eq(cfg_load(&c, 1, argv, 1, NULL, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "BILLING_LOG_LEVEL"), "%s", err);
    unsetenv("BILLING_LOG_LEVEL");
    setenv("BILLING_COOKIE_SECURE", "maybe", 1);
    cr_expect_eq(cfg_load(&c, 1, argv, 1, NULL, NULL, err, sizeof err), -1);
    unsetenv("BILLING_COOKIE_SECURE");
    char *argv2[] = {"x", "--api-threads", NULL};
    cr_expect_eq(cfg_load(&c, 2, argv2, 1, NULL, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "--api-threads needs a value"), "%s", err);
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    setenv("BILLING_DATABASE_URL", big, 1);
    cr_expect_eq(cfg_load(&c, 1, argv, 1, NULL, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "too long"), "%s", err);
    clear_env();
}

Test(buf, grows_escapes_and_steals) {
    buf b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++) buf_printf(&b, "%d,", i);
    cr_expect_eq(b.len, strlen(b.p));
    cr_expect(strncmp(b.p, "0,1,2,", 6) == 0);
    cr_expect(strstr(b.p, "999,") != NULL);
    buf_free(&b);
    buf_add_json_escaped(&b, "a\"b\\c\n\x01\xc3\xa9", 9);
    cr_expect_str_eq(b.p, "a\\\"b\\\\c\\n\\u0001\xc3\xa9");
    size_t n;
    char *p = buf_steal(&b, &n);
    cr_expect_eq(n, strlen(p));
    cr_expect_null(b.p);
    free(p);
    char long_s[600];
    memset(long_s, 'x', sizeof long_s - 1);
    long_s[sizeof long_s - 1] = '\0';
    buf_printf(&b, "<%s>", long_s);
    cr_expect_eq(b.len, 601, "printf beyond the stack scratch buffer");
    buf_free(&b);
}

Test(cur, minor_units_of_iso_4217) {
    static const struct {
        char code[4];
        int minor;
    } t[] = {{"USD", 2}, {"EUR", 2}, {"JPY", 0},  {"KWD", 3},  {"BHD", 3}, {"CLF", 4},
             {"KRW", 0}, {"CHF", 2}, {"XYZ", -1}, {"usd", -1}, {"US", -1}, {"", -1}};
    for (size_t i = 0; i < ML_ARRAY_LEN(t); i++)
        cr_expect_eq(cur_minor_units(t[i].code), t[i].minor, "%s", t[i].code);
    cr_expect_eq(cur_minor_units("USDX"), -1);
    cr_expect_eq(cur_minor_units(NULL), -1);
}

Test(rnd, tokens_hashes_and_passwords) {
    cr_assert_eq(rnd_init(), 0);
    char a[RND_TOKEN_MAX], b[RND_TOKEN_MAX];
    rnd_token("mk_", a);
    rnd_token("mk_", b);
    cr_expect_eq(strlen(a), 3 + 43, "256 bits in base64url: %s", a);
    cr_expect_str_neq(a, b);
    cr_expect(strspn(a + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
              43);
    char h[RND_HASH_HEX];
    rnd_sha256_hex("abc", 3, h);
    cr_expect_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char u[RND_UUID_MAX];
    rnd_uuid(u);
    cr_expect_eq(strlen(u), 36);
    cr_expect_eq(u[14], '4', "version 4: %s", u);
    char pw[RND_PWHASH_MAX];
    cr_assert_eq(rnd_password_hash("correct horse", pw), 0);
    cr_expect(strncmp(pw, "$argon2id$", 10) == 0, "%s", pw);
    cr_expect_eq(rnd_password_verify(pw, "correct horse"), 1);
    cr_expect_eq(rnd_password_verify(pw, "correct horsE"), 0);
    cr_expect_eq(rnd_password_verify("garbage", "x"), 0);
}

Test(log, level_names) {
    cr_expect_eq(log_level_parse("debug"), LOG_DEBUG);
    cr_expect_eq(log_level_parse("error"), LOG_ERROR);
    cr_expect_eq(log_level_parse("ERROR"), -1);
    cr_expect_eq(log_level_parse(""), -1);
}

Test(rds, url_parsing) {
    rds_url u;
    char err[128];
    cr_assert_eq(rds_url_parse("redis://127.0.0.1:6380/3", &u, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(u.host, "127.0.0.1");
    cr_expect_eq(u.port, 6380);
    cr_expect_eq(u.db, 3);
    cr_assert_eq(rds_url_parse("redis://:s3cret@localhost", &u, err, sizeof err), 0);
    cr_expect_str_eq(u.password, "s3cret");
    cr_expect_str_eq(u.host, "localhost");
    cr_expect_eq(u.port, 6379);
    cr_expect_eq(u.db, 0);
    cr_assert_eq(rds_url_parse("redis://user:pw@h:1/", &u, err, sizeof err), 0);
    cr_expect_str_eq(u.password, "pw");
    static const char *const bad[] = {"http://x",        "redis://",      "redis://h:0",
                                      "redis://h:70000", "redis://h:12x", "redis://h/abc",
                                      "redis://h/-1",    "redis://h?x"};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad); i++)
        cr_expect_eq(rds_url_parse(bad[i], &u, err, sizeof err), -1, "%s accepted", bad[i]);
}
