/* demo.c — demo data: "Demo Trucking" with an owner login, twelve sites as
 * customers, the four metrics of ../shared/tools/gen_usage.py and a plan that
 * uses every charge model.
 *
 * DESIGN — Goes through the same repositories as the API, so demo rows obey
 * the same rules.  Idempotent: if the organization "demo-trucking" exists,
 * nothing is written.  All in one transaction: a failure leaves nothing.
 */
#include "fmacros.h"
#include "demo.h"
#include "jx.h"
#include "log.h"
#include "repo.h"
#include "rnd.h"

static const char *const k_metrics[] = {
    "{\"code\":\"api_calls\",\"name\":\"API calls\",\"aggregation\":\"sum\",\"unit\":\"call\"}",
    "{\"code\":\"vm_uptime_minutes\",\"name\":\"VM "
    "uptime\",\"aggregation\":\"sum\",\"unit\":\"minute\"}",
    "{\"code\":\"cpu_seconds\",\"name\":\"CPU time\",\"aggregation\":\"sum\",\"unit\":\"second\"}",
    "{\"code\":\"storage_gb_hours\",\"name\":\"Storage\",\"aggregation\":\"sum\",\"unit\":\"GB-"
    "hour\"}",
};

static const char k_plan[] =
    "{\"code\":\"fleet-standard\",\"name\":\"Fleet Standard\",\"currency\":\"USD\","
    "\"base_fee\":\"49.00\",\"charges\":["
    "{\"metric\":\"api_calls\",\"model\":\"graduated\",\"included_units\":\"1000\","
    " \"tiers\":[{\"up_to\":\"10000\",\"unit_price\":\"0.002\",\"flat_fee\":\"0\"},"
    "            {\"up_to\":null,\"unit_price\":\"0.001\",\"flat_fee\":\"0\"}]},"
    "{\"metric\":\"vm_uptime_minutes\",\"model\":\"per_unit\",\"unit_price\":\"0.0008\"},"
    "{\"metric\":\"cpu_seconds\",\"model\":\"package\",\"unit_price\":\"0.50\","
    " \"package_size\":\"3600\"},"
    "{\"metric\":\"storage_gb_hours\",\"model\":\"volume\",\"minimum\":\"5.00\","
    " \"tiers\":[{\"up_to\":\"1000\",\"unit_price\":\"0.0002\",\"flat_fee\":\"0\"},"
    "            {\"up_to\":null,\"unit_price\":\"0.00015\",\"flat_fee\":\"0\"}]}]}";

static const char *const k_cities[] = {"Phoenix", "Dallas",         "Denver",  "Atlanta",
                                       "Reno",    "Columbus",       "Memphis", "Tucson",
                                       "Laredo",  "Salt Lake City", "Fresno",  "Zürich"};

int demo_load(db *d, char *err, size_t errlen) {
    db_err e;
    long long org_id;
    int rc = repo_org_by_slug(d, &e, "demo-trucking", &org_id);
    if (rc == REPO_OK) {
        LOG_KV(LOG_INFO, "demo data already loaded", LF_I("org_id", org_id));
        return 0;
    }
    if (rc == REPO_ERR) {
        snprintf(err, errlen, "%s", e.msg);
        return -1;
    }
    char hash[RND_PWHASH_MAX];
    if (rnd_password_hash(DEMO_PASSWORD, hash)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (db_begin(d, &e)) goto fail;
    json_t *org = NULL, *out = NULL;
    repo_field f = {{0}, {0}};
    if (repo_org_create(d, &e, "Demo Trucking", &org_id, &org) != REPO_OK) goto fail;
    json_decref(org);
    if (repo_user_create(d, &e, org_id, DEMO_EMAIL, "Dana Demo", hash, "owner", &out, &f) !=
        REPO_OK)
        goto fail_field;
    json_decref(out);
    for (size_t i = 0; i < ML_ARRAY_LEN(k_metrics); i++) {
        char je[128];
        json_t *m = jx_loadb(k_metrics[i], strlen(k_metrics[i]), je, sizeof je);
        rc = m ? repo_metric_create(d, &e, org_id, m, &out, &f) : REPO_ERR;
        json_decref(m);
        if (rc != REPO_OK) goto fail_field;
        json_decref(out);
    }
    json_t *plan = json_loads(k_plan, 0, NULL);
    rc = plan ? repo_plan_create(d, &e, org_id, plan, &out, &f) : REPO_ERR;
    json_decref(plan);
    if (rc != REPO_OK) goto fail_field;
    json_decref(out);
    for (int i = 1; i <= 12; i++) {
        char ext[16], name[64];
        snprintf(ext, sizeof ext, "site-%05d", i);
        snprintf(name, sizeof name, "%s yard %d", k_cities[i - 1], i);
        json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:b}", "external_id", ext, "name",
                              name, "currency", "USD", "plan", "fleet-standard", "billing_address",
                              "city", k_cities[i - 1], "country", i == 12 ? "CH" : "US",
                              "require_approval", i % 4 == 0);
        rc = c ? repo_customer_create(d, &e, org_id, c, &out, &f) : REPO_ERR;
        json_decref(c);
        if (rc != REPO_OK) goto fail_field;
        json_decref(out);
    }
    if (db_commit(d, &e)) goto fail;
    LOG_KV(LOG_INFO, "demo data loaded", LF_I("org_id", org_id));
    return 0;
fail_field:
    if (rc != REPO_ERR) {
        db_rollback(d);
        snprintf(err, errlen, "%s: %s", f.field, f.message);
        return -1;
    }
fail:
    db_rollback(d);
    snprintf(err, errlen, "%s", e.msg);
    return -1;
}
