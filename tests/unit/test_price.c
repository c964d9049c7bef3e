/* test_price.c — unit tests for shared/price.c (the pricing engine).
 *
 * DESIGN — Table-driven; table rows keep their strings inline (char arrays:
 * Debian's Criterion 2.4.1 crashes on pointers in ParameterizedTest
 * parameters under PIE), "" standing for a NULL column.  Amounts are compared
 * by their formatted text, which pins value and scale ("5.00" is not "5").
 *   - charge_cases: every model at every tier boundary (0, exactly up_to,
 *     up_to + 1e-12, huge), included units below / at / above the allowance,
 *     minimums below / equal / above, JPY / USD / KWD, half-even ties and
 *     amounts at the 10^26 overflow edge;
 *   - loader errors name the field; base fee and totals (tax rounding,
 *     negative adjustments, overflow);
 *   - a property test: a few thousand seeded random plans and quantities
 *     checked against a reference written here on base-10 digit arrays
 *     (schoolbook multiply, long division by repeated subtraction, rounding by
 *     looking at the discarded digits) — it shares no code with price.c or
 *     dec.c, not even the decimal parser.
 */
#include "fmacros.h"
#include "price.h"
#include "jx.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>

/* ---- helpers ---------------------------------------------------------- */

static dec_t P(const char *s) {
    dec_t d;
    int rc = dec_parse_cstr(&d, s);
    cr_assert_eq(rc, DEC_OK, "dec_parse(\"%s\") = %d", s, rc);
    return d;
}

static const char *F(const dec_t *d, char *buf) {
    int n = dec_format(d, buf, DEC_FMT_MAX);
    cr_assert(n >= 0, "dec_format failed");
    return buf;
}

static const char *opt(const char *s) { return s[0] ? s : NULL; }

/* Loads a charge; tiers is JSON text ("" = none) read with jx_loadb. */
static int load(prc_plan_charge *c, const char *model, const char *unit_price, const char *inc,
                const char *ps, const char *min, const char *tiers, char *err, size_t errlen) {
    json_t *t = NULL;
    if (tiers[0]) {
        char jerr[160];
        t = jx_loadb(tiers, strlen(tiers), jerr, sizeof jerr);
        cr_assert(t != NULL, "tiers JSON: %s", jerr);
    }
    int rc =
        prc_charge_load(c, model, opt(unit_price), opt(inc), opt(ps), opt(min), t, err, errlen);
    json_decref(t);
    return rc;
}

static prc_plan_charge *new_charge(void) {
    prc_plan_charge *c = malloc(sizeof *c);
    cr_assert(c != NULL);
    return c;
}

static prc_result *new_result(void) {
    prc_result *r = malloc(sizeof *r);
    cr_assert(r != NULL);
    memset(r, 0x5a, sizeof *r); /* garbage: every field read must have been written */
    return r;
}

/* ---- charges: hand-computed table -------------------------------------- */

/* graduated: (0,100] at 0.10; (100,1000] at 0.05 + 5 flat; above at 0.01 */
#define GRAD                                                                                       \
    "[{\"up_to\":\"100\",\"unit_price\":\"0.10\",\"flat_fee\":\"0\"},"                             \
    "{\"up_to\":\"1000\",\"unit_price\":\"0.05\",\"flat_fee\":\"5\"},"                             \
    "{\"up_to\":null,\"unit_price\":\"0.01\",\"flat_fee\":\"0\"}]"
/* volume: up to 100 at 1 + 10 flat; up to 1000 at 0.5 + 20; above at 0.25 */
#define VOL                                                                                        \
    "[{\"up_to\":\"100\",\"unit_price\":\"1\",\"flat_fee\":\"10\"},"                               \
    "{\"up_to\":\"1000\",\"unit_price\":\"0.5\",\"flat_fee\":\"20\"},"                             \
    "{\"up_to\":null,\"unit_price\":\"0.25\"}]"
/* one open tier with numbers as JSON numbers (kept exact by jx_loadb) */
#define OPEN1 "[{\"up_to\":null,\"unit_price\":0.000000000001,\"flat_fee\":1}]"

#define Z24   "000000000000000000000000"
#define BIG26 "99999999999999999999999999.999999999999" /* largest quantity */

struct charge_case {
    char name[48];
    char model[12];
    char unit_price[48];
    char included[48];
    char package_size[48];
    char minimum[48];
    char tiers[256];
    int minor;
    char qty[48];
    int rc;
    char amount[48];
    char true_up[48]; /* "" = no true-up */
    char exact[64];   /* "" = not checked */
    char packages[48];
};

static struct charge_case charge_cases[] = {
    /* graduated at every boundary */
    {"grad q=0", "graduated", "", "", "", "", GRAD, 2, "0", PRC_OK, "0.00", "", "0." Z24, "0"},
    {"grad inside tier 0", "graduated", "", "", "", "", GRAD, 2, "50", PRC_OK, "5.00", "", "", "0"},
    {"grad q=up_to[0]", "graduated", "", "", "", "", GRAD, 2, "100", PRC_OK, "10.00", "", "10." Z24,
     "0"},
    {"grad up_to[0]+1e-12 enters tier 1 (flat)", "graduated", "", "", "", "", GRAD, 2,
     "100.000000000001", PRC_OK, "15.00", "", "15.000000000000050000000000", "0"},
    {"grad q=up_to[1]", "graduated", "", "", "", "", GRAD, 2, "1000", PRC_OK, "60.00", "",
     "60." Z24, "0"},
    {"grad up_to[1]+1e-12", "graduated", "", "", "", "", GRAD, 2, "1000.000000000001", PRC_OK,
     "60.00", "", "60.000000000000010000000000", "0"},
    {"grad open tier", "graduated", "", "", "", "", GRAD, 2, "5000", PRC_OK, "100.00", "", "", "0"},
    {"grad huge", "graduated", "", "", "", "", GRAD, 2, "12345678901234567890.123456789012", PRC_OK,
     "123456789012345728.90", "", "123456789012345728.901234567890120000000000", "0"},
    {"grad included below", "graduated", "", "500", "", "", GRAD, 2, "499.999999999999", PRC_OK,
     "0.00", "", "0." Z24, "0"},
    {"grad included at", "graduated", "", "500", "", "", GRAD, 2, "500", PRC_OK, "0.00", "", "",
     "0"},
    {"grad included above", "graduated", "", "500", "", "", GRAD, 2, "600.000000000001", PRC_OK,
     "15.00", "", "", "0"},
    {"grad JPY", "graduated", "", "", "", "", GRAD, 0, "1000", PRC_OK, "60", "", "", "0"},
    {"grad KWD", "graduated", "", "", "", "", GRAD, 3, "100.0105", PRC_OK, "15.001", "", "", "0"},
    /* 0.1 + 0.0005 + 5 + ... : 10 + 0.0105*0.05 = 10.000525 + 5 -> KWD 15.001 (above half) */

    /* volume at every boundary */
    {"vol q=0", "volume", "", "", "", "", VOL, 2, "0", PRC_OK, "0.00", "", "0." Z24, "0"},
    {"vol q=1", "volume", "", "", "", "", VOL, 2, "1", PRC_OK, "11.00", "", "", "0"},
    {"vol q=up_to[0] stays in tier 0", "volume", "", "", "", "", VOL, 2, "100", PRC_OK, "110.00",
     "", "110." Z24, "0"},
    {"vol up_to[0]+1e-12 reprices all", "volume", "", "", "", "", VOL, 2, "100.000000000001",
     PRC_OK, "70.00", "", "70.000000000000500000000000", "0"},
    {"vol q=up_to[1]", "volume", "", "", "", "", VOL, 2, "1000", PRC_OK, "520.00", "", "", "0"},
    {"vol up_to[1]+1e-12", "volume", "", "", "", "", VOL, 2, "1000.000000000001", PRC_OK, "250.00",
     "", "250.000000000000250000000000", "0"},
    {"vol huge", "volume", "", "", "", "", VOL, 2, "12345678901234567890.123456789012", PRC_OK,
     "3086419725308641972.53", "", "3086419725308641972.530864197253000000000000", "0"},
    {"vol included at", "volume", "", "100", "", "", VOL, 2, "100", PRC_OK, "0.00", "", "", "0"},
    {"vol included above", "volume", "", "100", "", "", VOL, 2, "200", PRC_OK, "110.00", "", "",
     "0"},
    {"vol numbers in JSON, flat only", "volume", "", "", "", "", OPEN1, 2, "3", PRC_OK, "1.00", "",
     "1.000000000003000000000000", "0"},

    /* package */
    {"pkg q=0", "package", "5", "", "100", "", "", 2, "0", PRC_OK, "0.00", "", "", "0"},
    {"pkg q=1", "package", "5", "", "100", "", "", 2, "1", PRC_OK, "5.00", "", "", "1"},
    {"pkg q=size", "package", "5", "", "100", "", "", 2, "100", PRC_OK, "5.00", "", "", "1"},
    {"pkg size+1e-12", "package", "5", "", "100", "", "", 2, "100.000000000001", PRC_OK, "10.00",
     "", "", "2"},
    {"pkg fractional size", "package", "0.333", "", "0.5", "", "", 3, "1.25", PRC_OK, "0.999", "",
     "", "3"},
    {"pkg included at", "package", "5", "50", "100", "", "", 2, "50", PRC_OK, "0.00", "", "", "0"},
    {"pkg included above", "package", "5", "50", "100", "", "", 2, "150.000000000001", PRC_OK,
     "10.00", "", "", "2"},
    {"pkg 10^36 packages", "package", "0.000000000001", "", "0.000000000001", "", "", 2,
     "1000000000000000000000000", PRC_OK, "1000000000000000000000000.00", "",
     "1000000000000000000000000." Z24, "1000000000000000000000000000000000000"},
    {"pkg 10^38 - 1 packages round to 10^26", "package", "0.000000000001", "", "0.000000000001", "",
     "", 2, BIG26, PRC_EOVERFLOW, "", "", "", ""},
    {"pkg overflow of 256 bits", "package", "999999999999999999.999999999999", "", "0.000000000001",
     "", "", 2, BIG26, PRC_EOVERFLOW, "", "", "", ""},
    {"pkg JPY tie", "package", "0.5", "", "1", "", "", 0, "3", PRC_OK, "2", "", "", "3"},

    /* per_unit, included units, ties */
    {"unit included below", "per_unit", "0.001", "1000", "", "", "", 2, "999", PRC_OK, "0.00", "",
     "0." Z24, "0"},
    {"unit included at", "per_unit", "0.001", "1000", "", "", "", 2, "1000", PRC_OK, "0.00", "", "",
     "0"},
    {"unit included +1e-12", "per_unit", "0.001", "1000", "", "", "", 2, "1000.000000000001",
     PRC_OK, "0.00", "", "0.000000000000001000000000", "0"},
    {"unit included above", "per_unit", "0.001", "1000", "", "", "", 2, "2000", PRC_OK, "1.00", "",
     "", "0"},
    {"unit USD tie 0.005 -> 0.00", "per_unit", "0.005", "", "", "", "", 2, "1", PRC_OK, "0.00", "",
     "", "0"},
    {"unit USD tie 0.015 -> 0.02", "per_unit", "0.005", "", "", "", "", 2, "3", PRC_OK, "0.02", "",
     "", "0"},
    {"unit USD tie 0.025 -> 0.02", "per_unit", "0.005", "", "", "", "", 2, "5", PRC_OK, "0.02", "",
     "", "0"},
    {"unit USD tie 0.035 -> 0.04", "per_unit", "0.005", "", "", "", "", 2, "7", PRC_OK, "0.04", "",
     "", "0"},
    {"unit USD just above a tie", "per_unit", "0.005", "", "", "", "", 2, "1.000000000001", PRC_OK,
     "0.01", "", "0.005000000000005000000000", "0"},
    {"unit JPY tie 0.5 -> 0", "per_unit", "0.5", "", "", "", "", 0, "1", PRC_OK, "0", "", "", "0"},
    {"unit JPY tie 1.5 -> 2", "per_unit", "0.5", "", "", "", "", 0, "3", PRC_OK, "2", "", "", "0"},
    {"unit JPY tie 2.5 -> 2", "per_unit", "0.5", "", "", "", "", 0, "5", PRC_OK, "2", "", "", "0"},
    {"unit KWD tie 0.0015 -> 0.002", "per_unit", "0.0005", "", "", "", "", 3, "3", PRC_OK, "0.002",
     "", "", "0"},
    {"unit KWD tie 0.0025 -> 0.002", "per_unit", "0.0005", "", "", "", "", 3, "5", PRC_OK, "0.002",
     "", "", "0"},
    {"unit 10^20 x 12-place price (beyond int128)", "per_unit", "1.234567890123", "", "", "", "", 2,
     "12345678901234567890.123456789012", PRC_OK, "15241578753233197380.02", "",
     "15241578753233197380.023319738001905209728476", "0"},
    {"unit tiniest", "per_unit", "0.000000000001", "", "", "", "", 2, "0.000000000001", PRC_OK,
     "0.00", "", "0.000000000000000000000001", "0"},
    {"unit largest quantity, largest price", "per_unit", "999999999999999999.999999999999", "", "",
     "", "", 2, BIG26, PRC_EOVERFLOW, "", "", "", ""},
    {"unit just below 10^26", "per_unit", "10", "", "", "", "", 2, "9999999999999999999999999.999",
     PRC_OK, "99999999999999999999999999.99", "", "", "0"},
    {"unit rounds up to 10^26: overflow", "per_unit", "10", "", "", "", "", 2,
     "9999999999999999999999999.9995", PRC_EOVERFLOW, "", "", "", ""},
    {"unit exactly 10^26: overflow", "per_unit", "10", "", "", "", "", 0,
     "10000000000000000000000000", PRC_EOVERFLOW, "", "", "", ""},
    {"half the largest quantity (JPY)", "per_unit", "0.5", "", "", "", "", 0, BIG26, PRC_OK,
     "50000000000000000000000000", "", "", "0"},

    /* minimums */
    {"min below", "per_unit", "1", "", "", "10", "", 2, "5", PRC_OK, "5.00", "5.00", "", "0"},
    {"min equal", "per_unit", "1", "", "", "10", "", 2, "10", PRC_OK, "10.00", "", "", "0"},
    {"min above", "per_unit", "1", "", "", "10", "", 2, "12", PRC_OK, "12.00", "", "", "0"},
    {"min zero usage", "graduated", "", "", "", "25", GRAD, 2, "0", PRC_OK, "0.00", "25.00", "",
     "0"},
    {"min rounded first (10.005 -> 10.00)", "per_unit", "1", "", "", "10.005", "", 2, "9.994",
     PRC_OK, "9.99", "0.01", "", "0"},
    {"min equal after rounding", "per_unit", "1", "", "", "10.005", "", 2, "10.004", PRC_OK,
     "10.00", "", "", "0"},
    {"min JPY 100.5 -> 100, amount 99.5 -> 100", "per_unit", "1", "", "", "100.5", "", 0, "99.5",
     PRC_OK, "100", "", "", "0"},
    {"min JPY true-up", "per_unit", "1", "", "", "100.5", "", 0, "99.4", PRC_OK, "99", "1", "",
     "0"},
    {"min KWD", "package", "1.2345", "", "10", "", "", 3, "1", PRC_OK, "1.234", "", "", "1"},
    {"min KWD true-up", "package", "1.2345", "", "10", "2.0005", "", 3, "1", PRC_OK, "1.234",
     "0.766", "", "1"},
    {"min with included units", "volume", "", "1000", "", "100", VOL, 2, "1001", PRC_OK, "11.00",
     "89.00", "", "0"},
};

ParameterizedTestParameters(prc_charge, table) {
    return cr_make_param_array(struct charge_case, charge_cases, ML_ARRAY_LEN(charge_cases));
}

ParameterizedTest(struct charge_case *p, prc_charge, table) {
    prc_plan_charge *c = new_charge();
    prc_result *r = new_result();
    char err[200] = "", buf[DEC_FMT_MAX];
    int rc = load(c, p->model, p->unit_price, p->included, p->package_size, p->minimum, p->tiers,
                  err, sizeof err);
    cr_assert_eq(rc, PRC_OK, "%s: load: %s", p->name, err);
    dec_t q = P(p->qty);
    rc = prc_charge(p->minor, c, &q, r, err, sizeof err);
    cr_assert_eq(rc, p->rc, "%s: rc %d (%s), want %d", p->name, rc, err, p->rc);
    if (rc == PRC_OK) {
        cr_expect_str_eq(F(&r->amount, buf), p->amount, "%s: amount %s, want %s", p->name, buf,
                         p->amount);
        cr_expect_eq(r->has_true_up, p->true_up[0] != '\0', "%s: has_true_up", p->name);
        static const char zeros[][8] = {"0", "0.0", "0.00", "0.000", "0.0000"};
        const char *want_tu = p->true_up[0] ? p->true_up : zeros[p->minor];
        cr_expect_str_eq(F(&r->true_up, buf), want_tu, "%s: true_up %s, want %s", p->name, buf,
                         want_tu);
        if (p->exact[0])
            cr_expect_str_eq(r->amount_exact, p->exact, "%s: exact %s, want %s", p->name,
                             r->amount_exact, p->exact);
        cr_expect_str_eq(F(&r->packages, buf), p->packages, "%s: packages %s, want %s", p->name,
                         buf, p->packages);
        /* the exact amount rounds to the amount (checked through dec) */
        dec_t e, rr;
        if (dec_parse_cstr(&e, r->amount_exact) == DEC_OK) { /* at most 38 digits */
            cr_assert_eq(dec_round(&rr, &e, p->minor, DEC_ROUND_HALF_EVEN), DEC_OK);
            cr_expect_eq(dec_cmp(&rr, &r->amount), 0, "%s: exact does not round to amount",
                         p->name);
        }
    } else {
        cr_expect(strstr(err, "amount") != NULL, "%s: err \"%s\"", p->name, err);
    }
    free(c);
    free(r);
}

/* ---- breakdown --------------------------------------------------------- */

struct sub_want {
    size_t tier;
    char from[24], to[24]; /* to "" = open */
    char units[40], price[16], fee[16];
    char exact[64];
};

static void check_subs(const prc_result *r, const struct sub_want *w, size_t n) {
    char buf[DEC_FMT_MAX];
    cr_assert_eq(r->nsubs, n, "nsubs %zu, want %zu", r->nsubs, n);
    for (size_t i = 0; i < n; i++) {
        const prc_sub *s = &r->subs[i];
        cr_expect_eq(s->tier, w[i].tier, "sub %zu tier %zu", i, s->tier);
        cr_expect_str_eq(F(&s->from, buf), w[i].from, "sub %zu from %s", i, buf);
        cr_expect_eq(s->open, w[i].to[0] == '\0', "sub %zu open", i);
        if (w[i].to[0]) cr_expect_str_eq(F(&s->to, buf), w[i].to, "sub %zu to %s", i, buf);
        cr_expect_str_eq(F(&s->units, buf), w[i].units, "sub %zu units %s", i, buf);
        cr_expect_str_eq(F(&s->unit_price, buf), w[i].price, "sub %zu price %s", i, buf);
        cr_expect_str_eq(F(&s->flat_fee, buf), w[i].fee, "sub %zu fee %s", i, buf);
        cr_expect_str_eq(s->amount_exact, w[i].exact, "sub %zu exact %s", i, s->amount_exact);
    }
}

Test(prc_charge, graduated_breakdown_one_line_per_tier_used) {
    prc_plan_charge *c = new_charge();
    prc_result *r = new_result();
    char err[200];
    cr_assert_eq(load(c, "graduated", "", "10", "", "", GRAD, err, sizeof err), PRC_OK, "%s", err);
    dec_t q = P("5010.5");
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK, "%s", err);
    static const struct sub_want w[] = {
        {0, "0", "100", "100", "0.1", "0", "10." Z24},
        {1, "100", "1000", "900", "0.05", "5", "50." Z24},
        {2, "1000", "", "4000.5", "0.01", "0", "40.005000000000000000000000"},
    };
    check_subs(r, w, ML_ARRAY_LEN(w));
    char buf[DEC_FMT_MAX];
    cr_expect_str_eq(F(&r->billable, buf), "5000.5");
    cr_expect_str_eq(F(&r->amount, buf), "100.00"); /* 100.005 -> 100.00 (half-even) */
    cr_expect_str_eq(r->amount_exact, "100.005000000000000000000000");
    /* usage inside tier 1 only lists tiers 0 and 1; q = 0 lists none */
    q = P("110");
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK);
    cr_expect_eq(r->nsubs, 1); /* 110 - 10 included = 100: exactly tier 0 */
    q = P("0");
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK);
    cr_expect_eq(r->nsubs, 0);
    free(c);
    free(r);
}

Test(prc_charge, volume_breakdown_is_the_one_tier_applied) {
    prc_plan_charge *c = new_charge();
    prc_result *r = new_result();
    char err[200];
    cr_assert_eq(load(c, "volume", "", "", "", "", VOL, err, sizeof err), PRC_OK, "%s", err);
    dec_t q = P("500");
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK, "%s", err);
    static const struct sub_want w1[] = {{1, "100", "1000", "500", "0.5", "20", "270." Z24}};
    check_subs(r, w1, 1);
    q = P("1000000");
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK, "%s", err);
    static const struct sub_want w2[] = {{2, "1000", "", "1000000", "0.25", "0", "250000." Z24}};
    check_subs(r, w2, 1);
    q = P("0");
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK, "%s", err);
    cr_expect_eq(r->nsubs, 0);
    free(c);
    free(r);
}

Test(prc_charge, per_unit_and_package_have_no_sub_lines) {
    prc_plan_charge *c = new_charge();
    prc_result *r = new_result();
    char err[200], buf[DEC_FMT_MAX];
    dec_t q = P("250");
    cr_assert_eq(load(c, "package", "5", "", "100", "", "", err, sizeof err), PRC_OK, "%s", err);
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK, "%s", err);
    cr_expect_eq(r->nsubs, 0);
    cr_expect_str_eq(F(&r->packages, buf), "3");
    cr_assert_eq(load(c, "per_unit", "5", "", "", "", "", err, sizeof err), PRC_OK, "%s", err);
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK, "%s", err);
    cr_expect_eq(r->nsubs, 0);
    cr_expect_str_eq(F(&r->amount, buf), "1250.00");
    free(c);
    free(r);
}

/* ---- input errors ------------------------------------------------------ */

struct load_err_case {
    char model[12];
    char unit_price[48];
    char included[48];
    char package_size[48];
    char minimum[48];
    char tiers[200];
    char field[40]; /* err must start with this */
};

#define T_OPEN "{\"up_to\":null,\"unit_price\":\"1\"}"

static struct load_err_case load_err_cases[] = {
    {"tiered", "1", "", "", "", "", "model:"},
    {"", "1", "", "", "", "", "model:"},
    {"per_unit", "", "", "", "", "", "unit_price:"},
    {"per_unit", "1", "", "", "", "[" T_OPEN "]", "tiers:"},
    {"per_unit", "1", "", "1", "", "", "package_size:"},
    {"graduated", "1", "", "", "", "[" T_OPEN "]", "unit_price:"},
    {"graduated", "", "", "", "", "", "tiers:"},
    {"package", "1", "", "", "", "", "package_size:"},
    {"package", "1", "", "0", "", "", "package_size:"},
    {"package", "1", "", "-1", "", "", "package_size:"},
    {"package", "1", "", "0.0000000000001", "", "", "package_size:"},
    {"per_unit", "-1", "", "", "", "", "unit_price:"},
    {"per_unit", "", "", "", "", "", "unit_price:"},
    {"per_unit", "0.0000000000001", "", "", "", "", "unit_price:"},
    {"per_unit", "1000000000000000000", "", "", "", "", "unit_price:"},
    {"per_unit", "1e40", "", "", "", "", "unit_price:"},
    {"per_unit", "1 ", "", "", "", "", "unit_price:"},
    {"per_unit", "1", "abc", "", "", "", "included_units:"},
    {"per_unit", "1", "-0.5", "", "", "", "included_units:"},
    {"per_unit", "1", "100000000000000000000000000", "", "", "", "included_units:"},
    {"per_unit", "1", "", "", "-5", "", "minimum:"},
    {"per_unit", "1", "", "", "1.1234567890123", "", "minimum:"},
    {"graduated", "", "", "", "", "[]", "tiers:"},
    {"graduated", "", "", "", "", "{}", "tiers:"},
    {"graduated", "", "", "", "", "[1]", "tiers[0]:"},
    {"graduated", "", "", "", "", "[{\"up_to\":null,\"unit_price\":\"1\",\"to\":5}]",
     "tiers[0].to:"},
    {"graduated", "", "", "", "", "[{\"up_to\":\"0\",\"unit_price\":\"1\"}," T_OPEN "]",
     "tiers[0].up_to:"},
    {"graduated", "", "", "", "", "[{\"up_to\":\"-1\",\"unit_price\":\"1\"}," T_OPEN "]",
     "tiers[0].up_to:"},
    {"volume", "", "", "", "",
     "[{\"up_to\":\"100\",\"unit_price\":\"1\"},{\"up_to\":\"100.0\",\"unit_price\":\"1\"}," T_OPEN
     "]",
     "tiers[1].up_to:"},
    {"volume", "", "", "", "",
     "[{\"up_to\":\"100\",\"unit_price\":\"1\"},{\"up_to\":\"50\",\"unit_price\":\"1\"}," T_OPEN
     "]",
     "tiers[1].up_to:"},
    {"volume", "", "", "", "", "[" T_OPEN ",{\"up_to\":\"100\",\"unit_price\":\"1\"}]",
     "tiers[0].up_to:"},
    {"volume", "", "", "", "", "[{\"up_to\":\"100\",\"unit_price\":\"1\"}]", "tiers[0].up_to:"},
    {"volume", "", "", "", "", "[{\"unit_price\":\"1\"}]", "tiers[0].up_to:"},
    {"volume", "", "", "", "", "[{\"up_to\":\"1e26\",\"unit_price\":\"1\"}," T_OPEN "]",
     "tiers[0].up_to:"},
    {"volume", "", "", "", "", "[{\"up_to\":\"0.0000000000001\",\"unit_price\":\"1\"}," T_OPEN "]",
     "tiers[0].up_to:"},
    {"graduated", "", "", "", "", "[{\"up_to\":null}]", "tiers[0].unit_price:"},
    {"graduated", "", "", "", "", "[{\"up_to\":null,\"unit_price\":null}]", "tiers[0].unit_price:"},
    {"graduated", "", "", "", "", "[{\"up_to\":null,\"unit_price\":\"-1\"}]",
     "tiers[0].unit_price:"},
    {"graduated", "", "", "", "", "[{\"up_to\":null,\"unit_price\":true}]", "tiers[0].unit_price:"},
    {"graduated", "", "", "", "", "[{\"up_to\":null,\"unit_price\":\"x\"}]",
     "tiers[0].unit_price:"},
    {"graduated", "", "", "", "",
     "[{\"up_to\":\"5\",\"unit_price\":\"1\"},{\"up_to\":null,\"unit_price\":\"1\","
     "\"flat_fee\":\"1.0000000000001\"}]",
     "tiers[1].flat_fee:"},
    {"graduated", "", "", "", "", "[{\"up_to\":null,\"unit_price\":\"1\",\"flat_fee\":[]}]",
     "tiers[0].flat_fee:"},
};

ParameterizedTestParameters(prc_charge_load, errors_name_the_field) {
    return cr_make_param_array(struct load_err_case, load_err_cases, ML_ARRAY_LEN(load_err_cases));
}

ParameterizedTest(struct load_err_case *p, prc_charge_load, errors_name_the_field) {
    prc_plan_charge *c = new_charge();
    char err[200] = "";
    int rc = load(c, p->model, p->unit_price, p->included, p->package_size, p->minimum, p->tiers,
                  err, sizeof err);
    cr_expect_eq(rc, PRC_EINVAL, "%s/%s: rc %d", p->model, p->tiers, rc);
    cr_expect(strncmp(err, p->field, strlen(p->field)) == 0, "err \"%s\", want \"%s...\"", err,
              p->field);
    free(c);
}

Test(prc_charge_load, a_json_real_is_refused_and_a_null_model_too) {
    prc_plan_charge *c = new_charge();
    char err[200] = "";
    json_t *t = json_loads("[{\"up_to\":null,\"unit_price\":0.1}]", 0, NULL);
    cr_assert(t != NULL);
    cr_expect_eq(prc_charge_load(c, "graduated", NULL, NULL, NULL, NULL, t, err, sizeof err),
                 PRC_EINVAL);
    cr_expect(strncmp(err, "tiers[0].unit_price:", 20) == 0, "%s", err);
    json_decref(t);
    cr_expect_eq(prc_charge_load(c, NULL, "1", NULL, NULL, NULL, NULL, err, sizeof err),
                 PRC_EINVAL);
    cr_expect(strncmp(err, "model:", 6) == 0, "%s", err);
    /* a NULL error buffer is allowed */
    cr_expect_eq(prc_charge_load(c, "per_unit", "-1", NULL, NULL, NULL, NULL, NULL, 0), PRC_EINVAL);
    free(c);
}

Test(prc_charge_load, too_many_tiers) {
    prc_plan_charge *c = new_charge();
    char err[200] = "";
    json_t *t = json_array();
    for (int i = 1; i <= PRC_MAX_TIERS; i++) {
        char up[16];
        snprintf(up, sizeof up, "%d", i);
        json_array_append_new(t, json_pack("{s:s, s:s}", "up_to", up, "unit_price", "1"));
    }
    json_array_append_new(t, json_pack("{s:n, s:s}", "up_to", "unit_price", "1"));
    cr_expect_eq(prc_charge_load(c, "graduated", NULL, NULL, NULL, NULL, t, err, sizeof err),
                 PRC_EINVAL);
    cr_expect(strncmp(err, "tiers:", 6) == 0, "%s", err);
    /* exactly PRC_MAX_TIERS is fine, and every tier is priced */
    json_array_remove(t, 0);
    cr_assert_eq(prc_charge_load(c, "graduated", NULL, NULL, NULL, NULL, t, err, sizeof err),
                 PRC_OK, "%s", err);
    prc_result *r = new_result();
    dec_t q = P("1000");
    cr_assert_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK, "%s", err);
    cr_expect_eq(r->nsubs, PRC_MAX_TIERS);
    char buf[DEC_FMT_MAX];
    cr_expect_str_eq(F(&r->amount, buf), "1000.00");
    json_decref(t);
    free(c);
    free(r);
}

Test(prc_charge_load, values_are_normalized_and_defaults_filled) {
    prc_plan_charge *c = new_charge();
    char err[200] = "", buf[DEC_FMT_MAX];
    cr_assert_eq(load(c, "volume", "", "", "", "",
                      "[{\"up_to\":\"100.500\",\"unit_price\":2,\"flat_fee\":null},"
                      "{\"up_to\":null,\"unit_price\":\"0.10\"}]",
                      err, sizeof err),
                 PRC_OK, "%s", err);
    cr_expect_eq(c->model, PRC_VOLUME);
    cr_expect_eq(c->ntiers, 2);
    cr_expect_str_eq(F(&c->tiers[0].up_to, buf), "100.5");
    cr_expect_str_eq(F(&c->tiers[0].unit_price, buf), "2");
    cr_expect_str_eq(F(&c->tiers[0].flat_fee, buf), "0");
    cr_expect(c->tiers[1].open);
    cr_expect_str_eq(F(&c->tiers[1].unit_price, buf), "0.1");
    cr_expect_str_eq(F(&c->included_units, buf), "0");
    cr_expect(!c->has_minimum);
    cr_expect_str_eq(prc_model_name(c->model), "volume");
    free(c);
}

Test(prc_charge, bad_quantity_currency_and_hand_built_charges) {
    prc_plan_charge *c = new_charge();
    prc_result *r = new_result();
    char err[200] = "";
    cr_assert_eq(load(c, "per_unit", "1", "", "", "", "", err, sizeof err), PRC_OK);
    static const char *const bad_q[] = {"-1", "0.0000000000001", "100000000000000000000000000",
                                        "1e26"};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad_q); i++) {
        dec_t q = P(bad_q[i]);
        err[0] = '\0';
        cr_expect_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_EINVAL, "q=%s", bad_q[i]);
        cr_expect(strncmp(err, "quantity:", 9) == 0, "q=%s: %s", bad_q[i], err);
    }
    dec_t q = P("1.0000000000000"); /* 13 places, but only zeros: fine */
    cr_expect_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_OK, "%s", err);
    cr_expect_eq(prc_charge(-1, c, &q, r, err, sizeof err), PRC_EINVAL);
    cr_expect_eq(prc_charge(PRC_MAX_MINOR + 1, c, &q, r, err, sizeof err), PRC_EINVAL);

    /* a hand-built graduated charge with tiers out of order is refused, not priced */
    cr_assert_eq(load(c, "graduated", "", "", "", "", GRAD, err, sizeof err), PRC_OK);
    c->tiers[1].up_to = P("50");
    q = P("2000");
    cr_expect_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_EINVAL);
    cr_expect(strncmp(err, "tiers[1].up_to:", 15) == 0, "%s", err);
    c->tiers[1].up_to = P("1000");
    c->tiers[0].unit_price = P("-1");
    cr_expect_eq(prc_charge(2, c, &q, r, err, sizeof err), PRC_EINVAL);
    cr_expect(strncmp(err, "tiers[0].unit_price:", 20) == 0, "%s", err);
    free(c);
    free(r);
}

Test(prc_minor_units, known_and_unknown_currencies) {
    int m = -7;
    char err[100] = "";
    cr_expect_eq(prc_minor_units("USD", &m, err, sizeof err), PRC_OK);
    cr_expect_eq(m, 2);
    cr_expect_eq(prc_minor_units("JPY", &m, err, sizeof err), PRC_OK);
    cr_expect_eq(m, 0);
    cr_expect_eq(prc_minor_units("KWD", &m, err, sizeof err), PRC_OK);
    cr_expect_eq(m, 3);
    m = -7;
    cr_expect_eq(prc_minor_units("XXX", &m, err, sizeof err), PRC_EINVAL);
    cr_expect_eq(m, -7);
    cr_expect(strncmp(err, "currency:", 9) == 0, "%s", err);
    cr_expect_eq(prc_minor_units("", &m, err, sizeof err), PRC_EINVAL);
    cr_expect_eq(prc_minor_units(NULL, &m, err, sizeof err), PRC_EINVAL);
}

/* ---- base fee and totals ----------------------------------------------- */

struct base_case {
    int minor;
    char fee[48]; /* "" = NULL */
    int rc;
    char want[48];
};

static struct base_case base_cases[] = {
    {2, "19.995", PRC_OK, "20.00"},
    {2, "19.985", PRC_OK, "19.98"},
    {2, "49", PRC_OK, "49.00"},
    {2, "", PRC_OK, "0.00"},
    {0, "1500.5", PRC_OK, "1500"},
    {0, "1501.5", PRC_OK, "1502"},
    {0, "", PRC_OK, "0"},
    {3, "1.0005", PRC_OK, "1.000"},
    {3, "1.0015", PRC_OK, "1.002"},
    {3, "1.000500000001", PRC_OK, "1.001"},
    {2, "999999999999999999.999999999999", PRC_OK, "1000000000000000000.00"},
    {2, "-1", PRC_EINVAL, ""},
    {2, "1.0000000000001", PRC_EINVAL, ""},
    {2, "abc", PRC_EINVAL, ""},
    {2, "1e18", PRC_EINVAL, ""},
    {9, "1", PRC_EINVAL, ""},
};

ParameterizedTestParameters(prc_base_fee, table) {
    return cr_make_param_array(struct base_case, base_cases, ML_ARRAY_LEN(base_cases));
}

ParameterizedTest(struct base_case *p, prc_base_fee, table) {
    dec_t out = dec_from_int(777);
    char err[200] = "", buf[DEC_FMT_MAX];
    int rc = prc_base_fee(p->minor, opt(p->fee), &out, err, sizeof err);
    cr_assert_eq(rc, p->rc, "fee %s: rc %d (%s)", p->fee, rc, err);
    if (rc == PRC_OK)
        cr_expect_str_eq(F(&out, buf), p->want, "fee %s -> %s, want %s", p->fee, buf, p->want);
    else if (p->minor <= PRC_MAX_MINOR)
        cr_expect(strncmp(err, "base_fee:", 9) == 0, "%s", err);
}

struct totals_case {
    char name[40];
    int minor;
    char lines[4][40]; /* "" ends the list */
    char rate[16];
    int rc;
    char subtotal[40], tax[40], total[40];
    char err_prefix[16]; /* "" = any message */
};

static struct totals_case totals_cases[] = {
    {"no lines", 2, {""}, "0.2", PRC_OK, "0.00", "0.00", "0.00", ""},
    {"tax tie down", 2, {"10.00", "0.05"}, "0.1", PRC_OK, "10.05", "1.00", "11.05", ""},
    {"tax tie up", 2, {"10.10"}, "0.15", PRC_OK, "10.10", "1.52", "11.62", ""},
    {"tax above tie", 2, {"10.06"}, "0.1", PRC_OK, "10.06", "1.01", "11.07", ""},
    {"tax 6 places",
     2,
     {"1234.56", "0.01"},
     "0.123456",
     PRC_OK,
     "1234.57",
     "152.42",
     "1386.99",
     ""},
    {"rate 0", 2, {"5.00", "2.50"}, "0", PRC_OK, "7.50", "0.00", "7.50", ""},
    {"rate 1", 2, {"5.00", "2.5", "3"}, "1", PRC_OK, "10.50", "10.50", "21.00", ""},
    {"negative adjustment", 2, {"10.00", "-20.00"}, "0.1", PRC_OK, "-10.00", "-1.00", "-11.00", ""},
    {"negative tie to even zero", 2, {"-0.05"}, "0.1", PRC_OK, "-0.05", "0.00", "-0.05", ""},
    {"negative tie away", 2, {"-0.15"}, "0.1", PRC_OK, "-0.15", "-0.02", "-0.17", ""},
    {"JPY tie down", 0, {"105"}, "0.1", PRC_OK, "105", "10", "115", ""},
    {"JPY tie up", 0, {"100", "15"}, "0.1", PRC_OK, "115", "12", "127", ""},
    {"KWD", 3, {"1.005"}, "0.5", PRC_OK, "1.005", "0.502", "1.507", ""},
    {"KWD fewer places", 3, {"1.5", "2"}, "0.05", PRC_OK, "3.500", "0.175", "3.675", ""},
    {"huge mixed signs",
     2,
     {"90000000000000000000000000", "90000000000000000000000000", "-90000000000000000000000000"},
     "0",
     PRC_OK,
     "90000000000000000000000000.00",
     "0.00",
     "90000000000000000000000000.00",
     ""},
    {"subtotal overflow",
     2,
     {"60000000000000000000000000", "40000000000000000000000000"},
     "0",
     PRC_EOVERFLOW,
     "",
     "",
     "",
     "subtotal:"},
    {"total overflow",
     2,
     {"90000000000000000000000000"},
     "0.2",
     PRC_EOVERFLOW,
     "",
     "",
     "",
     "total:"},
    {"total exactly 10^26",
     2,
     {"80000000000000000000000000"},
     "0.25",
     PRC_EOVERFLOW,
     "",
     "",
     "",
     "total:"},
    {"total just below 10^26",
     0,
     {"80000000000000000000000000"},
     "0.249999",
     PRC_OK,
     "80000000000000000000000000",
     "19999920000000000000000000",
     "99999920000000000000000000",
     ""},
    {"subtotal just below 10^26",
     3,
     {"99999999999999999999999999.999"},
     "0",
     PRC_OK,
     "99999999999999999999999999.999",
     "0.000",
     "99999999999999999999999999.999",
     ""},
    {"line not rounded", 2, {"1.005"}, "0", PRC_EINVAL, "", "", "", ""},
    {"line too big", 2, {"100000000000000000000000000"}, "0", PRC_EINVAL, "", "", "", ""},
    {"rate above 1", 2, {"1"}, "1.000001", PRC_EINVAL, "", "", "", ""},
    {"rate negative", 2, {"1"}, "-0.1", PRC_EINVAL, "", "", "", ""},
    {"rate 13 places", 2, {"1"}, "0.1000000000001", PRC_EINVAL, "", "", "", ""},
};

ParameterizedTestParameters(prc_totals, table) {
    return cr_make_param_array(struct totals_case, totals_cases, ML_ARRAY_LEN(totals_cases));
}

ParameterizedTest(struct totals_case *p, prc_totals, table) {
    dec_t lines[4], rate = P(p->rate);
    size_t n = 0;
    while (n < 4 && p->lines[n][0]) {
        lines[n] = P(p->lines[n]);
        n++;
    }
    dec_t s = dec_from_int(777), t = s, tot = s;
    char err[200] = "", buf[DEC_FMT_MAX];
    int rc = prc_totals(p->minor, lines, n, &rate, &s, &t, &tot, err, sizeof err);
    cr_assert_eq(rc, p->rc, "%s: rc %d (%s)", p->name, rc, err);
    if (rc == PRC_OK) {
        cr_expect_str_eq(F(&s, buf), p->subtotal, "%s: subtotal %s", p->name, buf);
        cr_expect_str_eq(F(&t, buf), p->tax, "%s: tax %s", p->name, buf);
        cr_expect_str_eq(F(&tot, buf), p->total, "%s: total %s", p->name, buf);
    } else {
        cr_expect(err[0] != '\0', "%s: no error message", p->name);
        cr_expect(strncmp(err, p->err_prefix, strlen(p->err_prefix)) == 0, "%s: err \"%s\"",
                  p->name, err);
        cr_expect(dec_cmp(&s, &(dec_t){777, 0}) == 0 && dec_cmp(&tot, &(dec_t){777, 0}) == 0,
                  "%s: outputs written on error", p->name);
    }
}

/* ---- the independent reference: base-10 digit arrays ------------------- */

#define BIG_DIGITS 200

typedef struct big {
    int n;                       /* digits in use; 0 for zero */
    unsigned char d[BIG_DIGITS]; /* little-endian base-10 digits */
} big;

static void big_trim(big *a) {
    while (a->n > 0 && a->d[a->n - 1] == 0) a->n--;
}

static big big_zero(void) {
    big a;
    memset(&a, 0, sizeof a);
    return a;
}

static big big_small(unsigned v) {
    big a = big_zero();
    while (v) {
        a.d[a.n++] = (unsigned char)(v % 10);
        v /= 10;
    }
    return a;
}

/* "123.45" read as an integer at `scale` places (the fraction must fit). */
static big big_parse(const char *s, int scale) {
    big a = big_zero();
    const char *dot = strchr(s, '.');
    size_t ilen = dot ? (size_t)(dot - s) : strlen(s);
    const char *frac = dot ? dot + 1 : "";
    int flen = (int)strlen(frac);
    cr_assert(flen <= scale, "big_parse(%s): too many places", s);
    /* digits from least significant: padding zeros, fraction reversed, integer reversed */
    for (int k = 0; k < scale - flen; k++) a.d[a.n++] = 0;
    for (int k = flen - 1; k >= 0; k--) a.d[a.n++] = (unsigned char)(frac[k] - '0');
    for (size_t k = ilen; k-- > 0;) a.d[a.n++] = (unsigned char)(s[k] - '0');
    cr_assert(a.n < BIG_DIGITS);
    big_trim(&a);
    return a;
}

static int big_cmp(const big *a, const big *b) {
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (int k = a->n - 1; k >= 0; k--)
        if (a->d[k] != b->d[k]) return a->d[k] < b->d[k] ? -1 : 1;
    return 0;
}

static big big_add(const big *a, const big *b) {
    big r = big_zero();
    int carry = 0, n = a->n > b->n ? a->n : b->n;
    for (int k = 0; k < n || carry; k++) {
        int s = carry + (k < a->n ? a->d[k] : 0) + (k < b->n ? b->d[k] : 0);
        cr_assert(k < BIG_DIGITS);
        r.d[k] = (unsigned char)(s % 10);
        carry = s / 10;
        r.n = k + 1;
    }
    big_trim(&r);
    return r;
}

static big big_sub(const big *a, const big *b) { /* a >= b */
    cr_assert(big_cmp(a, b) >= 0);
    big r = *a;
    int borrow = 0;
    for (int k = 0; k < r.n; k++) {
        int s = r.d[k] - borrow - (k < b->n ? b->d[k] : 0);
        borrow = s < 0;
        r.d[k] = (unsigned char)(s < 0 ? s + 10 : s);
    }
    big_trim(&r);
    return r;
}

static big big_mul(const big *a, const big *b) {
    int acc[2 * BIG_DIGITS] = {0};
    cr_assert(a->n + b->n < BIG_DIGITS);
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++) acc[i + j] += a->d[i] * b->d[j];
    big r = big_zero();
    int carry = 0;
    for (int k = 0; k < a->n + b->n + 1; k++) {
        int s = acc[k] + carry;
        r.d[k] = (unsigned char)(s % 10);
        carry = s / 10;
        r.n = k + 1;
    }
    big_trim(&r);
    return r;
}

static big big_shift(const big *a, int k) { /* a * 10^k */
    if (a->n == 0) return *a;
    big r = big_zero();
    cr_assert(a->n + k < BIG_DIGITS);
    for (int i = 0; i < a->n; i++) r.d[i + k] = a->d[i];
    r.n = a->n + k;
    return r;
}

/* q = a / b, rem = a % b: long division, each digit by repeated subtraction. */
static void big_divmod(const big *a, const big *b, big *q, big *rem) {
    cr_assert(b->n > 0);
    big r = big_zero(), qq = big_zero();
    qq.n = a->n;
    for (int k = a->n - 1; k >= 0; k--) {
        big dig = big_small(a->d[k]);
        big r10 = big_shift(&r, 1);
        r = big_add(&r10, &dig);
        int c = 0;
        while (big_cmp(&r, b) >= 0) {
            r = big_sub(&r, b);
            c++;
        }
        qq.d[k] = (unsigned char)c;
    }
    big_trim(&qq);
    *q = qq;
    *rem = r;
}

/* a / 10^k rounded half-even, by the discarded digits. */
static big big_round(const big *a, int k) {
    big q = big_zero();
    for (int i = k; i < a->n; i++) q.d[q.n++] = a->d[i];
    big_trim(&q);
    int first = k >= 1 && k - 1 < a->n ? a->d[k - 1] : 0;
    bool rest = false;
    for (int i = 0; i < k - 1 && i < a->n; i++) rest = rest || a->d[i] != 0;
    bool up = first > 5 || (first == 5 && (rest || (q.n > 0 && q.d[0] % 2 == 1)));
    if (up) {
        big one = big_small(1);
        q = big_add(&q, &one);
    }
    return q;
}

/* Plain text of a / 10^scale with exactly `scale` places. */
static void big_format(const big *a, int scale, char *out, size_t cap) {
    int nd = a->n > scale ? a->n : scale + 1;
    size_t o = 0;
    cr_assert((size_t)nd + 2 < cap);
    for (int k = nd - 1; k >= 0; k--) {
        out[o++] = (char)('0' + (k < a->n ? a->d[k] : 0));
        if (k == scale && scale > 0) out[o++] = '.';
    }
    out[o] = '\0';
}

Test(reference, self_check) {
    /* the reference itself, on values worked out by hand */
    char buf[128];
    big a = big_parse("123.45", 12), b = big_parse("0.5", 12);
    big p = big_mul(&a, &b);
    big_format(&p, 24, buf, sizeof buf);
    cr_assert_str_eq(buf, "61.725000000000000000000000");
    big r = big_round(&p, 22); /* 61.725 -> 61.72 */
    big_format(&r, 2, buf, sizeof buf);
    cr_assert_str_eq(buf, "61.72");
    big x = big_parse("61.735", 3);
    r = big_round(&x, 1);
    big_format(&r, 2, buf, sizeof buf);
    cr_assert_str_eq(buf, "61.74");
    big q, rem, seven = big_parse("7", 0), hund = big_parse("100", 0);
    big_divmod(&hund, &seven, &q, &rem);
    big_format(&q, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "14");
    big_format(&rem, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "2");
    big s = big_sub(&hund, &seven);
    big_format(&s, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "93");
}

/* ---- property test ---------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rnd_n(int n) { return (int)(rnd() % (uint64_t)n); }

/* A random decimal string: up to max_int integer digits (mostly few), up to
 * 12 places; nonzero when positive. */
static void rnd_dec_digits(char *out, size_t cap, int min_int, int max_int, bool positive) {
    for (;;) {
        int r = rnd_n(100);
        int ni = r < 35 ? rnd_n(3) : r < 75 ? rnd_n(7) : r < 92 ? rnd_n(13) : rnd_n(max_int + 1);
        if (ni > max_int) ni = max_int;
        if (ni < min_int) ni = min_int + rnd_n(max_int - min_int + 1);
        int nf = rnd_n(4) == 0 ? 0 : rnd_n(13);
        size_t o = 0;
        bool nonzero = false;
        if (ni == 0) out[o++] = '0';
        for (int k = 0; k < ni; k++) {
            char c = (char)('0' + (k == 0 ? 1 + rnd_n(9) : rnd_n(10)));
            out[o++] = c;
            nonzero = true;
        }
        if (nf) {
            out[o++] = '.';
            for (int k = 0; k < nf; k++) {
                char c = (char)('0' + rnd_n(10));
                nonzero = nonzero || c != '0';
                out[o++] = c;
            }
        }
        out[o] = '\0';
        cr_assert(o < cap);
        if (!positive || nonzero) return;
    }
}

static void rnd_dec(char *out, size_t cap, int max_int, bool positive) {
    rnd_dec_digits(out, cap, 0, max_int, positive);
}

typedef struct ref_plan {
    int model;
    int minor;
    char price[48], inc[48], ps[48], min[48]; /* "" = NULL */
    int ntiers;
    char up[8][48], tprice[8][48], tfee[8][48]; /* up "" = open */
} ref_plan;

/* Reference price of plan pl for quantity q: rc, and amount / true-up /
 * exact / subs as text. */
typedef struct ref_out {
    int rc;
    char amount[64], true_up[64], exact[96];
    int nsubs;
    int sub_tier[8];
    char sub_exact[8][96];
} ref_out;

static void reference(const ref_plan *pl, const char *qty, ref_out *o) {
    memset(o, 0, sizeof *o);
    big q = big_parse(qty, 12), inc = big_parse(pl->inc[0] ? pl->inc : "0", 12);
    big b = big_cmp(&q, &inc) > 0 ? big_sub(&q, &inc) : big_zero();
    big total = big_zero();
    if (pl->model == PRC_PER_UNIT) {
        big p = big_parse(pl->price, 12);
        total = big_mul(&b, &p);
    } else if (pl->model == PRC_PACKAGE) {
        big p = big_parse(pl->price, 12), ps = big_parse(pl->ps, 12), pk, rem;
        big_divmod(&b, &ps, &pk, &rem);
        if (rem.n > 0) {
            big one = big_small(1);
            pk = big_add(&pk, &one);
        }
        big t = big_mul(&pk, &p);
        total = big_shift(&t, 12);
    } else {
        /* walk the tiers by their bounds */
        big lo = big_zero();
        for (int i = 0; i < pl->ntiers; i++) {
            bool open = pl->up[i][0] == '\0';
            big hi = open ? b : big_parse(pl->up[i], 12);
            big units = big_zero();
            bool contains = open || big_cmp(&b, &hi) <= 0; /* b in (lo, hi] or below */
            if (big_cmp(&b, &lo) > 0) {
                if (pl->model == PRC_GRADUATED) {
                    big top = contains ? b : hi;
                    units = big_sub(&top, &lo);
                } else if (contains) {
                    units = b;
                }
            }
            if (units.n > 0) {
                big p = big_parse(pl->tprice[i], 12), f = big_parse(pl->tfee[i], 24);
                big e = big_mul(&units, &p);
                e = big_add(&e, &f);
                total = big_add(&total, &e);
                o->sub_tier[o->nsubs] = i;
                big_format(&e, 24, o->sub_exact[o->nsubs], sizeof o->sub_exact[0]);
                o->nsubs++;
            }
            lo = hi;
            if (contains) break;
        }
    }
    big amt = big_round(&total, 24 - pl->minor);
    big lim = big_shift(&(big){1, {1}}, 26 + pl->minor);
    if (big_cmp(&amt, &lim) >= 0) {
        o->rc = PRC_EOVERFLOW;
        return;
    }
    o->rc = PRC_OK;
    big_format(&amt, pl->minor, o->amount, sizeof o->amount);
    big_format(&total, 24, o->exact, sizeof o->exact);
    big tu = big_zero();
    if (pl->min[0]) {
        big m = big_parse(pl->min, 12);
        big rm = big_round(&m, 12 - pl->minor);
        if (big_cmp(&amt, &rm) < 0) tu = big_sub(&rm, &amt);
    }
    big_format(&tu, pl->minor, o->true_up, sizeof o->true_up);
}

static void ref_add_text(char *out, size_t cap, const char *a, const char *b) {
    big x = big_parse(a, 12), y = big_parse(b, 12);
    big s = big_add(&x, &y);
    big_format(&s, 12, out, cap);
}

static void ref_sub_text(char *out, size_t cap, const char *a, const char *b) {
    big x = big_parse(a, 12), y = big_parse(b, 12);
    big s = big_cmp(&x, &y) > 0 ? big_sub(&x, &y) : big_zero();
    big_format(&s, 12, out, cap);
}

static bool below_1e26(const char *s) {
    big x = big_parse(s, 12), lim = big_parse("100000000000000000000000000", 12);
    return big_cmp(&x, &lim) < 0;
}

static void random_plan(ref_plan *pl) {
    memset(pl, 0, sizeof *pl);
    static const int minors[] = {0, 2, 3};
    pl->model = rnd_n(4);
    pl->minor = minors[rnd_n(3)];
    if (rnd_n(2)) rnd_dec(pl->inc, sizeof pl->inc, 26, false);
    if (rnd_n(3) == 0) rnd_dec(pl->min, sizeof pl->min, 18, false);
    if (pl->model == PRC_PER_UNIT || pl->model == PRC_PACKAGE)
        rnd_dec(pl->price, sizeof pl->price, 18, false);
    if (pl->model == PRC_PACKAGE) rnd_dec(pl->ps, sizeof pl->ps, 26, true);
    if (pl->model == PRC_GRADUATED || pl->model == PRC_VOLUME) {
        pl->ntiers = 1 + rnd_n(6);
        char prev[48] = "0";
        for (int i = 0; i < pl->ntiers; i++) {
            if (i + 1 < pl->ntiers) {
                char step[48];
                do {
                    rnd_dec(step, sizeof step, 20, true);
                    ref_add_text(pl->up[i], sizeof pl->up[i], prev, step);
                } while (!below_1e26(pl->up[i]));
                memcpy(prev, pl->up[i], sizeof prev);
            }
            rnd_dec(pl->tprice[i], sizeof pl->tprice[i], 18, false);
            if (rnd_n(2))
                rnd_dec(pl->tfee[i], sizeof pl->tfee[i], 18, false);
            else
                memcpy(pl->tfee[i], "0", 2);
        }
    }
}

static void random_quantity(const ref_plan *pl, char *q, size_t cap) {
    const char *inc = pl->inc[0] ? pl->inc : "0";
    for (;;) {
        int r = rnd_n(10);
        char base[48];
        if (r == 0) {
            memcpy(q, "0", 2);
        } else if (r == 1) {
            memcpy(q, inc, strlen(inc) + 1); /* exactly the allowance */
        } else if (r <= 5 && pl->ntiers > 1) {
            /* a tier boundary (after the allowance), or 1e-12 either side */
            ref_add_text(base, sizeof base, inc, pl->up[rnd_n(pl->ntiers - 1)]);
            int s = rnd_n(3);
            if (s == 0)
                memcpy(q, base, sizeof base);
            else if (s == 1)
                ref_add_text(q, cap, base, "0.000000000001");
            else
                ref_sub_text(q, cap, base, "0.000000000001");
        } else if (r <= 5 && pl->model == PRC_PACKAGE) {
            /* k packages exactly, or 1e-12 either side */
            big ps = big_parse(pl->ps, 12), k = big_small((unsigned)rnd_n(5));
            big m = big_mul(&ps, &k);
            big_format(&m, 12, base, sizeof base);
            ref_add_text(base, sizeof base, inc, base);
            int s = rnd_n(3);
            if (s == 0)
                memcpy(q, base, sizeof base);
            else if (s == 1)
                ref_add_text(q, cap, base, "0.000000000001");
            else
                ref_sub_text(q, cap, base, "0.000000000001");
        } else if (r <= 7) {
            char d[48];
            rnd_dec(d, sizeof d, 10, false);
            ref_add_text(q, cap, inc, d);
        } else if (r == 8) {
            rnd_dec(q, cap, 26, false);
        } else {
            rnd_dec_digits(q, cap, 14, 26, false); /* huge: overflows with a large price */
        }
        if (below_1e26(q)) return;
    }
}

static void plan_tiers_json(const ref_plan *pl, char *out, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "[");
    for (int i = 0; i < pl->ntiers; i++) {
        char up[56];
        if (pl->up[i][0])
            snprintf(up, sizeof up, "\"%s\"", pl->up[i]);
        else
            memcpy(up, "null", 5);
        /* alternate between strings and bare numbers (jx_loadb keeps them exact) */
        const char *qt = (i % 2) ? "" : "\"";
        o += (size_t)snprintf(out + o, cap - o,
                              "%s{\"up_to\":%s,\"unit_price\":%s%s%s,\"flat_fee\":\"%s\"}",
                              i ? "," : "", up, qt, pl->tprice[i], qt, pl->tfee[i]);
        cr_assert(o < cap);
    }
    snprintf(out + o, cap - o, "]");
}

Test(prc_charge, matches_an_independent_reference_on_random_plans, .timeout = 120) {
    static const char *const models[] = {"per_unit", "graduated", "volume", "package"};
    prc_plan_charge *c = new_charge();
    prc_result *r = new_result();
    int n_ok = 0, n_over = 0, n_trueup = 0, n_subs = 0, n_wide = 0;
    rng_state = 20261001;
    for (int iter = 0; iter < 4000; iter++) {
        ref_plan pl;
        random_plan(&pl);
        char tiers[2000] = "", qty[64], err[200] = "";
        if (pl.ntiers) plan_tiers_json(&pl, tiers, sizeof tiers);
        int rc = load(c, models[pl.model], pl.price, pl.inc, pl.ps, pl.min, tiers, err, sizeof err);
        cr_assert_eq(rc, PRC_OK, "iter %d: load: %s", iter, err);
        for (int k = 0; k < 3; k++) {
            random_quantity(&pl, qty, sizeof qty);
            ref_out want;
            reference(&pl, qty, &want);
            dec_t q = P(qty);
            rc = prc_charge(pl.minor, c, &q, r, err, sizeof err);
            cr_assert_eq(rc, want.rc, "iter %d %s tiers %s inc %s price %s ps %s q %s: rc %d (%s)",
                         iter, models[pl.model], tiers, pl.inc, pl.price, pl.ps, qty, rc, err);
            if (rc != PRC_OK) {
                n_over++;
                continue;
            }
            n_ok++;
            char buf[DEC_FMT_MAX];
            cr_assert_str_eq(F(&r->amount, buf), want.amount,
                             "iter %d %s tiers %s inc %s price %s ps %s q %s: %s want %s", iter,
                             models[pl.model], tiers, pl.inc, pl.price, pl.ps, qty, buf,
                             want.amount);
            cr_assert_str_eq(r->amount_exact, want.exact, "iter %d q %s exact", iter, qty);
            cr_assert_str_eq(F(&r->true_up, buf), want.true_up, "iter %d q %s min %s true-up %s",
                             iter, qty, pl.min, buf);
            cr_assert_eq(r->has_true_up, !dec_is_zero(&r->true_up));
            n_trueup += r->has_true_up;
            cr_assert_eq((int)r->nsubs, want.nsubs, "iter %d q %s nsubs", iter, qty);
            for (int i = 0; i < want.nsubs; i++) {
                cr_assert_eq((int)r->subs[i].tier, want.sub_tier[i]);
                cr_assert_str_eq(r->subs[i].amount_exact, want.sub_exact[i]);
            }
            n_subs += want.nsubs > 1;
            n_wide += strlen(r->amount_exact) > 40; /* the exact sum did not fit int128 */

            /* and the invoice totals over this charge, its true-up and a base fee */
            char base[48], rate_txt[16];
            rnd_dec(base, sizeof base, 6, false);
            dec_t lines[3];
            cr_assert_eq(prc_base_fee(pl.minor, base, &lines[2], err, sizeof err), PRC_OK, "%s",
                         err);
            lines[0] = r->amount;
            lines[1] = r->true_up;
            snprintf(rate_txt, sizeof rate_txt, "0.%06d", rnd_n(1000001) % 1000000);
            if (rnd_n(20) == 0) memcpy(rate_txt, "1", 2);
            dec_t rate = P(rate_txt), st, tx, tt;
            rc = prc_totals(pl.minor, lines, 3, &rate, &st, &tx, &tt, err, sizeof err);

            big bf = big_parse(base, 12);
            big rbf = big_round(&bf, 12 - pl.minor);
            big la = big_parse(want.amount, pl.minor), lt = big_parse(want.true_up, pl.minor);
            big sub = big_add(&la, &lt);
            sub = big_add(&sub, &rbf);
            big rt = big_parse(rate_txt, 6);
            big tax = big_mul(&sub, &rt);
            tax = big_round(&tax, 6);
            big tot = big_add(&sub, &tax);
            big lim = big_shift(&(big){1, {1}}, 26 + pl.minor);
            if (big_cmp(&sub, &lim) >= 0 || big_cmp(&tot, &lim) >= 0) {
                cr_assert_eq(rc, PRC_EOVERFLOW, "totals should overflow");
                continue;
            }
            cr_assert_eq(rc, PRC_OK, "totals: %s", err);
            char w[96];
            big_format(&sub, pl.minor, w, sizeof w);
            cr_assert_str_eq(F(&st, buf), w, "subtotal");
            big_format(&tax, pl.minor, w, sizeof w);
            cr_assert_str_eq(F(&tx, buf), w, "tax of %s at %s", F(&st, buf), rate_txt);
            big_format(&tot, pl.minor, w, sizeof w);
            cr_assert_str_eq(F(&tt, buf), w, "total");
        }
    }
    /* the random walk covered what it is meant to cover */
    cr_expect_gt(n_ok, 8000);
    cr_expect_gt(n_over, 100);
    cr_expect_gt(n_trueup, 100);
    cr_expect_gt(n_subs, 500);
    cr_expect_gt(n_wide, 500);
    cr_log_info("random plans: %d priced, %d overflow, %d true-ups, %d multi-tier, %d wide", n_ok,
                n_over, n_trueup, n_subs, n_wide);
    free(c);
    free(r);
}
