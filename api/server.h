/* server.h — start billing-api's HTTP server (server.c). */
#ifndef ML_SERVER_H
#define ML_SERVER_H
#include "cfg.h"
/* Runs until SIGTERM/SIGINT; returns the process exit code. */
int api_server_run(const cfg *c);
#endif
