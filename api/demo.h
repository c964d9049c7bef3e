/* demo.h — the demo data `billing-api demo` loads (demo.c). */
#ifndef ML_DEMO_H
#define ML_DEMO_H
#include "db.h"
#define DEMO_EMAIL    "owner@demo.meterline.test"
#define DEMO_PASSWORD "meterline-demo"
/* Creates the demo organization and everything in it unless it exists.
 * 0 ok, -1 with err. */
int demo_load(db *d, char *err, size_t errlen);
#endif
