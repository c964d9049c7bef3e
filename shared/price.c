/* price.c — the pricing engine (prefix prc_).  The semantics are in price.h.
 *
 * DESIGN — Every input is >= 0 with at most 12 places, so it is read as an
 * unsigned integer at scale 12 ("s12": value * 10^12, < 10^38 since values are
 * < 10^26).  A product of two s12 integers is an integer at scale 24 (< 10^68)
 * and a charge is a sum of such products and of flat fees * 10^12: all of it
 * is kept exactly in a w256 (four 64-bit limbs, little-endian), and only the
 * final sum is divided by 10^(24 - minor) with half-even rounding.  A w256
 * overflow (>= 2^256 ~ 1.16e77) can only happen when the value is far above
 * 10^26 * 10^24, so it is reported as PRC_EOVERFLOW like any rounded amount
 * >= 10^26.  Totals keep the positive and the negative lines in two w256
 * sums, so mixed signs never overflow halfway.
 *
 * Pure: no allocation, no I/O, no globals; thread-safe.  Invalid values that
 * a loaded prc_plan_charge cannot hold are still checked (a caller may build one by
 * hand), so a wrong number is never returned for a malformed charge.
 */
#include "fmacros.h"
#include "price.h"
#include "cur.h"
#include "jx.h"

#include <assert.h>
#include <stdarg.h>

__extension__ typedef unsigned __int128 u128;
__extension__ typedef __int128 i128;

typedef struct w256 {
    uint64_t w[4]; /* little-endian limbs */
} w256;

/* 10^n for n = 0..19 (10^19 < 2^64). */
static const uint64_t k_p10_64[20] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    10000000000000000000ULL,
};

/* 10^n as u128 for n = 0..38. */
static u128 p10(int n) {
    assert(n >= 0 && n <= 38);
    u128 v = 1;
    while (n >= 19) {
        v *= k_p10_64[19];
        n -= 19;
    }
    return v * k_p10_64[n];
}

#define S12 (k_p10_64[PRC_SCALE]) /* 10^12: one unit at scale 12 */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- 256-bit unsigned arithmetic --------------------------------------- */

static w256 w_from(u128 v) {
    w256 r = {{(uint64_t)v, (uint64_t)(v >> 64), 0, 0}};
    return r;
}

static bool w_is_zero(const w256 *a) { return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0; }

/* a += v * 2^(64k); false if the sum needs more than 256 bits. */
static bool w_add_at(w256 *a, int k, u128 v) {
    u128 carry = v;
    for (int i = k; i < 4 && carry != 0; i++) {
        u128 s = (u128)a->w[i] + (uint64_t)carry;
        a->w[i] = (uint64_t)s;
        carry = (carry >> 64) + (s >> 64);
    }
    return carry == 0;
}

static bool w_add(w256 *a, const w256 *b) {
    bool ok = true;
    for (int i = 0; i < 4; i++)
        if (b->w[i] && !w_add_at(a, i, b->w[i])) ok = false;
    return ok;
}

/* a -= b; requires a >= b. */
static void w_sub(w256 *a, const w256 *b) {
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a->w[i] - b->w[i] - borrow;
        a->w[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) ? 1 : 0;
    }
    assert(borrow == 0);
}

static int w_cmp(const w256 *a, const w256 *b) {
    for (int i = 3; i >= 0; i--)
        if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

/* a * b: a full product of two 128-bit numbers always fits 256 bits. */
static w256 w_mul(u128 a, u128 b) {
    uint64_t a0 = (uint64_t)a, a1 = (uint64_t)(a >> 64);
    uint64_t b0 = (uint64_t)b, b1 = (uint64_t)(b >> 64);
    w256 r = w_from((u128)a0 * b0);
    bool ok = w_add_at(&r, 1, (u128)a0 * b1);
    ok = w_add_at(&r, 1, (u128)a1 * b0) && ok;
    ok = w_add_at(&r, 2, (u128)a1 * b1) && ok;
    assert(ok);
    ML_UNUSED(ok);
    return r;
}

/* a *= m; false on overflow (a is then unspecified). */
static bool w_mul_u64(w256 *a, uint64_t m) {
    u128 carry = 0;
    for (int i = 0; i < 4; i++) {
        u128 p = (u128)a->w[i] * m + carry;
        a->w[i] = (uint64_t)p;
        carry = p >> 64;
    }
    return carry == 0;
}

/* a /= d (d > 0); returns the remainder. */
static uint64_t w_divmod_u64(w256 *a, uint64_t d) {
    assert(d > 0);
    u128 rem = 0;
    for (int i = 3; i >= 0; i--) {
        u128 cur = (rem << 64) | a->w[i];
        a->w[i] = (uint64_t)(cur / d);
        rem = cur % d;
    }
    return (uint64_t)rem;
}

/* *out = round_half_even(a / 10^k), 0 <= k <= 38; false if it needs more
 * than 128 bits. */
static bool w_round(const w256 *a, int k, u128 *out) {
    assert(k >= 0 && k <= 38);
    w256 q = *a;
    u128 rem = 0, den = 1;
    for (int left = k; left > 0;) {
        int s = left > 19 ? 19 : left;
        uint64_t r = w_divmod_u64(&q, k_p10_64[s]);
        rem += (u128)r * den; /* rem < den * 10^s <= 10^38 */
        den *= k_p10_64[s];
        left -= s;
    }
    u128 other = den - rem; /* 2*rem vs den without overflow */
    bool bump = rem != 0 && (rem > other || (rem == other && (q.w[0] & 1)));
    if (bump && !w_add_at(&q, 0, 1)) return false;
    if (q.w[2] || q.w[3]) return false;
    *out = ((u128)q.w[1] << 64) | q.w[0];
    return true;
}

/* Writes a (>= 0) / 10^scale in plain form with exactly `scale` places. */
static bool w_format(const w256 *a, int scale, char *buf, size_t cap) {
    char dig[80]; /* 2^256 has 78 digits */
    int n = 0;
    w256 t = *a;
    do {
        dig[n++] = (char)('0' + w_divmod_u64(&t, 10));
    } while (!w_is_zero(&t));
    int ndig = n > scale ? n : scale + 1;
    size_t need = (size_t)ndig + (scale > 0 ? 1u : 0u);
    if (need + 1 > cap) {
        if (cap > 0) buf[0] = '\0';
        return false;
    }
    size_t o = 0;
    for (int k = ndig - 1; k >= 0; k--) {
        buf[o++] = k < n ? dig[k] : '0';
        if (k == scale && scale > 0) buf[o++] = '.';
    }
    buf[o] = '\0';
    return true;
}

/* ---- decimals at scale 12 --------------------------------------------- */

/* *out = d * 10^12 if d >= 0 has at most 12 places and is below
 * 10^int_digits; else false. */
static bool to_s12(const dec_t *d, int int_digits, u128 *out) {
    if (d->scale < 0 || d->scale > DEC_MAX_SCALE || d->c < 0) return false;
    dec_t t;
    if (dec_rescale(&t, d, PRC_SCALE) != DEC_OK) return false;
    u128 m = (u128)t.c;
    if (m >= p10(int_digits + PRC_SCALE)) return false;
    *out = m;
    return true;
}

/* dec_t of an s12 integer, normalized (trailing zeros dropped). */
static dec_t from_s12(u128 m) {
    dec_t d;
    d.c = (i128)m;
    d.scale = PRC_SCALE;
    return dec_normalize(&d);
}

/* Parses a decimal column value: >= 0 (> 0 if positive), at most 12 places,
 * below 10^int_digits.  Normalized into *out. */
static int load_text(dec_t *out, const char *field, const char *text, int int_digits, bool positive,
                     char *err, size_t errlen) {
    dec_t d;
    int rc = dec_parse_cstr(&d, text);
    if (rc == DEC_ESCALE)
        return fail(err, errlen, PRC_EINVAL, "%s: has more than %d decimal places", field,
                    PRC_SCALE);
    if (rc == DEC_EOVERFLOW)
        return fail(err, errlen, PRC_EINVAL, "%s: must be below 10^%d", field, int_digits);
    if (rc != DEC_OK) return fail(err, errlen, PRC_EINVAL, "%s: must be a decimal number", field);
    if (dec_sign(&d) < 0) return fail(err, errlen, PRC_EINVAL, "%s: must be >= 0", field);
    if (positive && dec_is_zero(&d)) return fail(err, errlen, PRC_EINVAL, "%s: must be > 0", field);
    d = dec_normalize(&d);
    if (d.scale > PRC_SCALE)
        return fail(err, errlen, PRC_EINVAL, "%s: has more than %d decimal places", field,
                    PRC_SCALE);
    u128 m;
    if (!to_s12(&d, int_digits, &m))
        return fail(err, errlen, PRC_EINVAL, "%s: must be below 10^%d", field, int_digits);
    *out = d;
    return PRC_OK;
}

/* ---- loading ---------------------------------------------------------- */

static const char *const k_model_names[] = {
    [PRC_PER_UNIT] = "per_unit",
    [PRC_GRADUATED] = "graduated",
    [PRC_VOLUME] = "volume",
    [PRC_PACKAGE] = "package",
};

const char *prc_model_name(prc_model m) {
    if ((unsigned)m >= ML_ARRAY_LEN(k_model_names)) return "?";
    return k_model_names[m];
}

int prc_minor_units(const char *currency, int *minor, char *err, size_t errlen) {
    int m = cur_minor_units(currency);
    if (m < 0 || m > PRC_MAX_MINOR)
        return fail(err, errlen, PRC_EINVAL, "currency: unknown ISO 4217 code \"%.8s\"",
                    currency ? currency : "");
    *minor = m;
    return PRC_OK;
}

/* A tier's decimal value (JSON string, integer or jx-marked number). */
static int tier_value(dec_t *out, const json_t *v, const char *field, int int_digits, bool positive,
                      char *err, size_t errlen) {
    char ibuf[32];
    const char *text = jx_number_text(v, ibuf, sizeof ibuf);
    if (!text && jx_is_string(v)) text = json_string_value(v);
    if (!text) {
        if (json_is_real(v))
            return fail(err, errlen, PRC_EINVAL,
                        "%s: must be a decimal string (a JSON real has lost digits)", field);
        return fail(err, errlen, PRC_EINVAL, "%s: must be a decimal string", field);
    }
    return load_text(out, field, text, int_digits, positive, err, errlen);
}

static int load_tiers(prc_plan_charge *c, const json_t *tiers, char *err, size_t errlen) {
    if (!json_is_array(tiers)) return fail(err, errlen, PRC_EINVAL, "tiers: must be an array");
    size_t n = json_array_size(tiers);
    if (n == 0 || n > PRC_MAX_TIERS)
        return fail(err, errlen, PRC_EINVAL, "tiers: must have 1 to %d tiers", PRC_MAX_TIERS);
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(tiers, i);
        prc_tier *pt = &c->tiers[i];
        char f[48];
        if (!json_is_object(t))
            return fail(err, errlen, PRC_EINVAL, "tiers[%zu]: must be an object", i);
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)t, key, v) {
            if (strcmp(key, "up_to") && strcmp(key, "unit_price") && strcmp(key, "flat_fee"))
                return fail(err, errlen, PRC_EINVAL, "tiers[%zu].%.64s: unknown field", i, key);
        }
        int rc;
        v = json_object_get(t, "up_to");
        snprintf(f, sizeof f, "tiers[%zu].up_to", i);
        if (!v) return fail(err, errlen, PRC_EINVAL, "%s: is required (null for the last tier)", f);
        pt->open = json_is_null(v);
        pt->up_to = dec_zero();
        if (pt->open && i + 1 < n)
            return fail(err, errlen, PRC_EINVAL, "%s: only the last tier may be open-ended (null)",
                        f);
        if (!pt->open && i + 1 == n)
            return fail(err, errlen, PRC_EINVAL, "%s: the last tier must be open-ended (null)", f);
        if (!pt->open) {
            if ((rc = tier_value(&pt->up_to, v, f, PRC_QTY_INT_DIGITS, true, err, errlen)))
                return rc;
            if (i > 0 && dec_cmp(&pt->up_to, &c->tiers[i - 1].up_to) <= 0) {
                char prev[DEC_FMT_MAX];
                dec_format(&c->tiers[i - 1].up_to, prev, sizeof prev);
                return fail(err, errlen, PRC_EINVAL,
                            "%s: must be greater than the previous tier's (%s)", f, prev);
            }
        }
        v = json_object_get(t, "unit_price");
        snprintf(f, sizeof f, "tiers[%zu].unit_price", i);
        if (!v || json_is_null(v)) return fail(err, errlen, PRC_EINVAL, "%s: is required", f);
        if ((rc = tier_value(&pt->unit_price, v, f, PRC_PRICE_INT_DIGITS, false, err, errlen)))
            return rc;
        v = json_object_get(t, "flat_fee");
        snprintf(f, sizeof f, "tiers[%zu].flat_fee", i);
        pt->flat_fee = dec_zero();
        if (v && !json_is_null(v) &&
            (rc = tier_value(&pt->flat_fee, v, f, PRC_PRICE_INT_DIGITS, false, err, errlen)))
            return rc;
    }
    c->ntiers = n;
    return PRC_OK;
}

int prc_charge_load(prc_plan_charge *c, const char *model, const char *unit_price,
                    const char *included_units, const char *package_size, const char *minimum,
                    const json_t *tiers, char *err, size_t errlen) {
    assert(c != NULL);
    memset(c, 0, sizeof *c);
    size_t mi;
    for (mi = 0; mi < ML_ARRAY_LEN(k_model_names); mi++)
        if (model && !strcmp(model, k_model_names[mi])) break;
    if (mi == ML_ARRAY_LEN(k_model_names))
        return fail(err, errlen, PRC_EINVAL,
                    "model: must be one of per_unit, graduated, volume, package");
    c->model = (prc_model)mi;
    bool tiered = c->model == PRC_GRADUATED || c->model == PRC_VOLUME;
    bool has_tiers = tiers && !json_is_null(tiers);
    int rc;
    c->unit_price = c->included_units = c->package_size = c->minimum = dec_zero();

    if (tiered) {
        if (unit_price)
            return fail(err, errlen, PRC_EINVAL,
                        "unit_price: is not used by the %s model (price the tiers)", model);
        if (!has_tiers)
            return fail(err, errlen, PRC_EINVAL, "tiers: is required for the %s model", model);
        if ((rc = load_tiers(c, tiers, err, errlen))) return rc;
    } else {
        if (has_tiers)
            return fail(err, errlen, PRC_EINVAL,
                        "tiers: is only used by the graduated and volume models");
        if (!unit_price)
            return fail(err, errlen, PRC_EINVAL, "unit_price: is required for the %s model", model);
        if ((rc = load_text(&c->unit_price, "unit_price", unit_price, PRC_PRICE_INT_DIGITS, false,
                            err, errlen)))
            return rc;
    }
    if (c->model == PRC_PACKAGE) {
        if (!package_size)
            return fail(err, errlen, PRC_EINVAL, "package_size: is required for the package model");
        if ((rc = load_text(&c->package_size, "package_size", package_size, PRC_QTY_INT_DIGITS,
                            true, err, errlen)))
            return rc;
    } else if (package_size) {
        return fail(err, errlen, PRC_EINVAL, "package_size: is only used by the package model");
    }
    if (included_units && (rc = load_text(&c->included_units, "included_units", included_units,
                                          PRC_QTY_INT_DIGITS, false, err, errlen)))
        return rc;
    if (minimum) {
        if ((rc = load_text(&c->minimum, "minimum", minimum, PRC_PRICE_INT_DIGITS, false, err,
                            errlen)))
            return rc;
        c->has_minimum = true;
    }
    return PRC_OK;
}

/* ---- pricing ---------------------------------------------------------- */

/* s12 of a charge field, or PRC_EINVAL naming it (a hand-built charge). */
#define FIELD_S12(dst, d, digits, name)                                                            \
    do {                                                                                           \
        if (!to_s12((d), (digits), &(dst)))                                                        \
            return fail(err, errlen, PRC_EINVAL, "%s: not a loaded value", (name));                \
    } while (0)

/* units * price + fee * 10^12: the exact amount of one tier, scale 24. */
static w256 tier_exact(u128 units, u128 price12, u128 fee12) {
    w256 e = w_mul(units, price12);
    w256 f = w_mul(fee12, S12);
    bool ok = w_add(&e, &f); /* < 10^68 + 10^42: cannot overflow */
    assert(ok);
    ML_UNUSED(ok);
    return e;
}

int prc_charge(int minor, const prc_plan_charge *c, const dec_t *q, prc_result *r, char *err,
               size_t errlen) {
    assert(c != NULL && q != NULL && r != NULL);
    if (minor < 0 || minor > PRC_MAX_MINOR)
        return fail(err, errlen, PRC_EINVAL, "currency: %d minor units (0..%d)", minor,
                    PRC_MAX_MINOR);
    u128 q12, inc12, price12 = 0;
    if (dec_sign(q) < 0) return fail(err, errlen, PRC_EINVAL, "quantity: must be >= 0");
    if (dec_places(q) > PRC_SCALE)
        return fail(err, errlen, PRC_EINVAL, "quantity: has more than %d decimal places",
                    PRC_SCALE);
    if (!to_s12(q, PRC_QTY_INT_DIGITS, &q12))
        return fail(err, errlen, PRC_EINVAL, "quantity: must be below 10^%d", PRC_QTY_INT_DIGITS);
    FIELD_S12(inc12, &c->included_units, PRC_QTY_INT_DIGITS, "included_units");
    u128 b12 = q12 > inc12 ? q12 - inc12 : 0;

    w256 total = w_from(0);
    w256 subs[PRC_MAX_TIERS];
    size_t nsubs = 0;
    u128 packages = 0;
    if (c->model == PRC_GRADUATED || c->model == PRC_VOLUME) {
        if (c->ntiers == 0 || c->ntiers > PRC_MAX_TIERS || !c->tiers[c->ntiers - 1].open)
            return fail(err, errlen, PRC_EINVAL, "tiers: not loaded tiers");
    }
    switch (c->model) {
    case PRC_PER_UNIT:
        FIELD_S12(price12, &c->unit_price, PRC_PRICE_INT_DIGITS, "unit_price");
        total = w_mul(b12, price12);
        break;
    case PRC_PACKAGE: {
        u128 size12;
        FIELD_S12(price12, &c->unit_price, PRC_PRICE_INT_DIGITS, "unit_price");
        FIELD_S12(size12, &c->package_size, PRC_QTY_INT_DIGITS, "package_size");
        if (size12 == 0) return fail(err, errlen, PRC_EINVAL, "package_size: must be > 0");
        packages = b12 / size12 + (b12 % size12 != 0); /* < 10^38 */
        total = w_mul(packages, price12);              /* scale 12 */
        if (!w_mul_u64(&total, S12))                   /* scale 24 */
            return fail(err, errlen, PRC_EOVERFLOW, "amount: does not fit numeric(38,12)");
        break;
    }
    case PRC_GRADUATED:
    case PRC_VOLUME: {
        u128 lo = 0; /* exclusive lower bound of tier i, s12 */
        for (size_t i = 0; i < c->ntiers && b12 > lo; i++) {
            const prc_tier *t = &c->tiers[i];
            u128 up = 0, fee12;
            char f[48];
            if (!t->open) {
                snprintf(f, sizeof f, "tiers[%zu].up_to", i);
                FIELD_S12(up, &t->up_to, PRC_QTY_INT_DIGITS, f);
                if (up <= lo) return fail(err, errlen, PRC_EINVAL, "%s: not ascending", f);
            } else if (i + 1 != c->ntiers) {
                return fail(err, errlen, PRC_EINVAL, "tiers[%zu].up_to: open before the last tier",
                            i);
            }
            snprintf(f, sizeof f, "tiers[%zu].unit_price", i);
            FIELD_S12(price12, &t->unit_price, PRC_PRICE_INT_DIGITS, f);
            snprintf(f, sizeof f, "tiers[%zu].flat_fee", i);
            FIELD_S12(fee12, &t->flat_fee, PRC_PRICE_INT_DIGITS, f);
            bool last_used = t->open || b12 <= up;
            u128 units;
            if (c->model == PRC_GRADUATED)
                units = (last_used ? b12 : up) - lo;
            else if (last_used)
                units = b12;
            else
                units = 0; /* volume: b lies above this tier */
            if (units > 0) {
                w256 e = tier_exact(units, price12, fee12);
                if (!w_add(&total, &e))
                    return fail(err, errlen, PRC_EOVERFLOW, "amount: does not fit numeric(38,12)");
                prc_sub *s = &r->subs[nsubs];
                s->tier = i;
                s->from = from_s12(lo);
                s->to = t->open ? dec_zero() : from_s12(up);
                s->open = t->open;
                s->units = from_s12(units);
                s->unit_price = t->unit_price;
                s->flat_fee = t->flat_fee;
                subs[nsubs++] = e;
            }
            lo = up;
        }
        break;
    }
    default:
        return fail(err, errlen, PRC_EINVAL, "model: unknown (%d)", (int)c->model);
    }

    u128 amt;
    if (!w_round(&total, PRC_EXACT_SCALE - minor, &amt) || amt >= p10(PRC_QTY_INT_DIGITS + minor))
        return fail(err, errlen, PRC_EOVERFLOW, "amount: does not fit numeric(38,12)");
    r->amount.c = (i128)amt;
    r->amount.scale = minor;
    r->billable = from_s12(b12);
    r->packages.c = (i128)packages;
    r->packages.scale = 0;
    r->has_true_up = false;
    r->true_up.c = 0;
    r->true_up.scale = minor;
    if (c->has_minimum) {
        u128 min12;
        FIELD_S12(min12, &c->minimum, PRC_PRICE_INT_DIGITS, "minimum");
        ML_UNUSED(min12);
        dec_t rmin;
        int rc = dec_round(&rmin, &c->minimum, minor, DEC_ROUND_HALF_EVEN);
        assert(rc == DEC_OK); /* < 10^18 with 12 places */
        if (rc != DEC_OK) return fail(err, errlen, PRC_EINVAL, "minimum: %s", dec_strerror(rc));
        if (dec_cmp(&r->amount, &rmin) < 0) {
            r->has_true_up = true;
            rc = dec_sub(&r->true_up, &rmin, &r->amount);
            assert(rc == DEC_OK);
        }
    }
    bool ok = w_format(&total, PRC_EXACT_SCALE, r->amount_exact, sizeof r->amount_exact);
    for (size_t i = 0; i < nsubs; i++)
        ok = w_format(&subs[i], PRC_EXACT_SCALE, r->subs[i].amount_exact,
                      sizeof r->subs[i].amount_exact) &&
             ok;
    /* Every part is <= the total, which is < 10^26 here: 51 characters. */
    assert(ok);
    if (ML_NEVER(!ok)) return fail(err, errlen, PRC_EOVERFLOW, "amount: exact text too long");
    r->nsubs = nsubs;
    return PRC_OK;
}

int prc_base_fee(int minor, const char *base_fee, dec_t *out, char *err, size_t errlen) {
    assert(out != NULL);
    if (minor < 0 || minor > PRC_MAX_MINOR)
        return fail(err, errlen, PRC_EINVAL, "currency: %d minor units (0..%d)", minor,
                    PRC_MAX_MINOR);
    dec_t d = dec_zero();
    int rc;
    if (base_fee &&
        (rc = load_text(&d, "base_fee", base_fee, PRC_PRICE_INT_DIGITS, false, err, errlen)))
        return rc;
    rc = dec_round(out, &d, minor, DEC_ROUND_HALF_EVEN);
    assert(rc == DEC_OK);
    return rc == DEC_OK ? PRC_OK : fail(err, errlen, PRC_EINVAL, "base_fee: %s", dec_strerror(rc));
}

int prc_totals(int minor, const dec_t *lines, size_t n, const dec_t *tax_rate, dec_t *subtotal,
               dec_t *tax, dec_t *total, char *err, size_t errlen) {
    assert((lines != NULL || n == 0) && tax_rate && subtotal && tax && total);
    if (minor < 0 || minor > PRC_MAX_MINOR)
        return fail(err, errlen, PRC_EINVAL, "currency: %d minor units (0..%d)", minor,
                    PRC_MAX_MINOR);
    dec_t rate = dec_normalize(tax_rate);
    dec_t one = dec_from_int(1);
    if (dec_sign(&rate) < 0 || dec_cmp(&rate, &one) > 0)
        return fail(err, errlen, PRC_EINVAL, "tax_rate: must be between 0 and 1");
    if (rate.scale > PRC_SCALE)
        return fail(err, errlen, PRC_EINVAL, "tax_rate: has more than %d decimal places",
                    PRC_SCALE);

    u128 limit = p10(PRC_QTY_INT_DIGITS + minor); /* 10^26 at scale minor */
    w256 pos = w_from(0), neg = w_from(0);
    for (size_t i = 0; i < n; i++) {
        if (dec_places(&lines[i]) > minor)
            return fail(err, errlen, PRC_EINVAL,
                        "lines[%zu]: not rounded to the currency's %d places", i, minor);
        dec_t m = lines[i];
        bool negative = dec_sign(&m) < 0;
        if (negative && dec_neg(&m, &m) != DEC_OK)
            return fail(err, errlen, PRC_EINVAL, "lines[%zu]: not a decimal", i);
        /* |line| < 10^26 needs at most 30 digits at scale minor: rescale fits. */
        dec_t big = {.c = (i128)p10(PRC_QTY_INT_DIGITS), .scale = 0};
        if (dec_cmp(&m, &big) >= 0)
            return fail(err, errlen, PRC_EINVAL, "lines[%zu]: must be below 10^%d in magnitude", i,
                        PRC_QTY_INT_DIGITS);
        int rc = dec_rescale(&m, &m, minor);
        assert(rc == DEC_OK);
        if (rc != DEC_OK)
            return fail(err, errlen, PRC_EINVAL, "lines[%zu]: %s", i, dec_strerror(rc));
        w256 v = w_from((u128)m.c);
        bool ok = w_add(negative ? &neg : &pos, &v); /* n * 10^30 < 2^256 */
        assert(ok);
        ML_UNUSED(ok);
    }
    bool sneg = w_cmp(&pos, &neg) < 0;
    w256 mag = sneg ? neg : pos;
    w_sub(&mag, sneg ? &pos : &neg);
    if (mag.w[2] || mag.w[3])
        return fail(err, errlen, PRC_EOVERFLOW, "subtotal: does not fit numeric(38,12)");
    u128 s = ((u128)mag.w[1] << 64) | mag.w[0];
    if (s >= limit)
        return fail(err, errlen, PRC_EOVERFLOW, "subtotal: does not fit numeric(38,12)");

    /* tax = s * rate, rounded from scale minor + rate.scale to minor. */
    w256 prod = w_mul(s, (u128)rate.c);
    u128 t;
    bool ok = w_round(&prod, rate.scale, &t);
    assert(ok && t <= s); /* rate <= 1 */
    if (ML_NEVER(!ok)) return fail(err, errlen, PRC_EOVERFLOW, "tax: does not fit");
    if (s + t >= limit)
        return fail(err, errlen, PRC_EOVERFLOW, "total: does not fit numeric(38,12)");

    i128 sign = sneg ? -1 : 1;
    subtotal->c = sign * (i128)s;
    subtotal->scale = minor;
    tax->c = sign * (i128)t;
    tax->scale = minor;
    total->c = sign * (i128)(s + t);
    total->scale = minor;
    return PRC_OK;
}
