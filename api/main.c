/* main.c — billing-api: the HTTP server and its admin subcommands.
 *
 *   billing-api [serve]                     HTTP server (default)
 *   billing-api migrate                     apply database migrations
 *   billing-api create-admin --email E --password-stdin
 *   billing-api demo                        load demo data (idempotent)
 *
 * DESIGN — A table of subcommands; configuration comes from cfg (env, then
 * flags) for all of them, so every subcommand talks to the same database the
 * server would.
 */
#include "fmacros.h"
#include "cfg.h"
#include "db.h"
#include "demo.h"
#include "log.h"
#include "migrate.h"
#include "repo.h"
#include "rnd.h"
#include "server.h"
#include <stdlib.h>

typedef int (*cmd_fn)(const cfg *c, int argc, char **argv);

static int cmd_serve(const cfg *c, int argc, char **argv) {
    if (argc > 0) {
        fprintf(stderr, "billing-api serve: unexpected argument %s\n", argv[0]);
        return 2;
    }
    return api_server_run(c);
}

static int cmd_migrate(const cfg *c, int argc, char **argv) {
    ML_UNUSED(argv);
    if (argc > 0) {
        fprintf(stderr, "billing-api migrate takes no arguments\n");
        return 2;
    }
    db *d = db_open(c->database_url);
    if (!d) return 1;
    db_err e;
    int n = db_migrate(d, &e);
    db_close(d);
    if (n < 0) {
        LOG_KV(LOG_ERROR, "migration failed", LF_S("error", e.msg));
        return 1;
    }
    LOG_KV(LOG_INFO, "database is up to date", LF_I("applied", n),
           LF_I("version", db_migrate_latest()));
    return 0;
}

static int cmd_create_admin(const cfg *c, int argc, char **argv) {
    const char *email = NULL;
    int pw_stdin = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--email") && i + 1 < argc)
            email = argv[++i];
        else if (!strncmp(argv[i], "--email=", 8))
            email = argv[i] + 8;
        else if (!strcmp(argv[i], "--password-stdin"))
            pw_stdin = 1;
        else {
            fprintf(stderr, "create-admin: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!email || !pw_stdin) {
        fprintf(stderr, "usage: billing-api create-admin --email E --password-stdin\n");
        return 2;
    }
    char pw[300];
    if (!fgets(pw, sizeof pw, stdin)) {
        fprintf(stderr, "create-admin: no password on standard input\n");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (strlen(pw) < 8 || strlen(pw) > 256) {
        fprintf(stderr, "create-admin: the password must have 8 to 256 characters\n");
        return 2;
    }
    char hash[RND_PWHASH_MAX];
    if (rnd_password_hash(pw, hash)) return 1;
    db *d = db_open(c->database_url);
    if (!d) return 1;
    db_err e;
    repo_field f;
    json_t *user = NULL;
    int rc = repo_user_create(d, &e, 0, email, "Platform admin", hash, "admin", &user, &f);
    db_close(d);
    if (rc == REPO_CONFLICT) {
        fprintf(stderr, "create-admin: %s is already registered\n", email);
        return 1;
    }
    if (rc != REPO_OK) {
        fprintf(stderr, "create-admin: %s\n", e.msg);
        return 1;
    }
    printf("created platform admin %s (id %s)\n", email,
           json_string_value(json_object_get(user, "id")));
    json_decref(user);
    return 0;
}

static int cmd_demo(const cfg *c, int argc, char **argv) {
    ML_UNUSED(argv);
    if (argc > 0) {
        fprintf(stderr, "billing-api demo takes no arguments\n");
        return 2;
    }
    db *d = db_open(c->database_url);
    if (!d) return 1;
    char err[512];
    int rc = demo_load(d, err, sizeof err);
    db_close(d);
    if (rc) {
        fprintf(stderr, "demo: %s\n", err);
        return 1;
    }
    printf("login: %s / %s\n", DEMO_EMAIL, DEMO_PASSWORD);
    return 0;
}

static const struct {
    const char *name;
    cmd_fn fn;
    const char *help;
} k_cmds[] = {
    {"serve", cmd_serve, "run the HTTP server (default)"},
    {"migrate", cmd_migrate, "apply database migrations (idempotent)"},
    {"create-admin", cmd_create_admin, "--email E --password-stdin: create a platform admin"},
    {"demo", cmd_demo, "load the demo organization, login, customers, metrics and plan"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: billing-api [command] [--flag value ...]\n\nCommands:\n");
    for (size_t i = 0; i < ML_ARRAY_LEN(k_cmds); i++)
        fprintf(out, "  %-14s %s\n", k_cmds[i].name, k_cmds[i].help);
    fprintf(out, "\n");
    cfg_help(out);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    }
    int first = 1;
    cmd_fn fn = cmd_serve;
    const char *name = "serve";
    if (argc > 1 && argv[1][0] != '-') {
        fn = NULL;
        for (size_t i = 0; i < ML_ARRAY_LEN(k_cmds); i++)
            if (!strcmp(argv[1], k_cmds[i].name)) {
                fn = k_cmds[i].fn;
                name = k_cmds[i].name;
            }
        if (!fn) {
            fprintf(stderr, "billing-api: unknown command %s\n\n", argv[1]);
            usage(stderr);
            return 2;
        }
        first = 2;
    }
    static cfg c;
    char err[512];
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    if (!pos) return 1;
    if (cfg_load(&c, argc, argv, first, pos, &npos, err, sizeof err)) {
        fprintf(stderr, "billing-api: %s\n", err);
        free(pos);
        return 2;
    }
    log_init(c.log_level, strcmp(name, "serve") ? "billing-api-cli" : "billing-api");
    if (rnd_init()) {
        fprintf(stderr, "billing-api: libsodium failed to initialize\n");
        free(pos);
        return 1;
    }
    int rc = fn(&c, npos, pos);
    free(pos);
    return rc;
}
