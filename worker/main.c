/* main.c — billing-worker: the supervisor of the worker processes.
 *
 *   billing-worker [--workers N] [...config flags]
 */
#include "fmacros.h"
#include "cfg.h"
#include "log.h"
#include "pdf.h"
#include "rnd.h"
#include "wk.h"
#include <stdlib.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: billing-worker [--flag value ...]\n"
                   "Runs BILLING_WORKERS worker processes under a supervisor.\n\n");
            cfg_help(stdout);
            return 0;
        }
    }
    static cfg c;
    char err[512];
    int npos = 0;
    /* --processes N is the design's name for --workers N */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--processes")) argv[i] = "--workers";
    if (cfg_load(&c, argc, argv, 1, NULL, &npos, err, sizeof err)) {
        fprintf(stderr, "billing-worker: %s\n", err);
        return 2;
    }
    if (npos) {
        fprintf(stderr, "billing-worker: unexpected arguments (see --help)\n");
        return 2;
    }
    log_init(c.log_level, "billing-worker");
    if (rnd_init()) return 1;
    LOG_KV(LOG_INFO, "billing-worker", LF_S("libharu", pdf_libharu_version()));
    return wk_supervise(&c);
}
