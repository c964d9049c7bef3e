/* price.h — the pricing engine: what one plan charge costs for a quantity, and
 * an invoice's subtotal, tax and total (prefix prc_).
 *
 * DESIGN — Pure functions over memory: no I/O, no allocation, no globals, so
 * every function is thread-safe and is tested alone (tests/unit/test_price.c).
 * The caller (the invoice job) reads plans and usage from the database, loads
 * each charge with prc_charge_load, prices it with prc_charge, rounds the plan
 * base fee with prc_base_fee and adds everything up with prc_totals.
 *
 * Inputs are the database's columns (db/migrations/0001_accounts.sql): prices,
 * flat fees, minimums and the base fee are numeric(30,12) (>= 0, at most 12
 * places and 18 integer digits); quantities, included units, package sizes
 * and tier bounds are numeric(38,12) (>= 0, at most 12 places and 26 integer
 * digits).  Anything else is refused with PRC_EINVAL and a message naming the
 * field ("tiers[2].up_to: must be greater than the previous tier's (1000)").
 *
 * Exactness.  Every amount is computed exactly: all inputs are integers at
 * scale 12, so a product is an integer at scale 24, and products and sums are
 * kept in a 256-bit unsigned intermediate (a quantity of 10^26 times a price
 * of 10^18 needs ~226 bits).  Nothing is rounded before the end; each line is
 * rounded ONCE, half-even, to the currency's minor unit.  PRC_EOVERFLOW means
 * the rounded amount itself does not fit numeric(38,12) (|amount| >= 10^26);
 * it never stands for an intermediate that happened to be large.  No float or
 * double anywhere.
 *
 * Semantics of one charge for a usage quantity q (aggregated by the caller
 * over the period):
 *   1. Included units are free: billable b = max(0, q - included_units).
 *      Every model prices b.
 *   2. per_unit:  b * unit_price.
 *   3. package:   ceil(b / package_size) * unit_price — unit_price is the price
 *      of each started package; b = 0 is 0 packages.
 *   4. graduated: tier i covers (up_to[i-1], up_to[i]] — the first starts at 0,
 *      the last (up_to null) is unbounded.  Units in tier i =
 *      max(0, min(b, up_to[i]) - up_to[i-1]); a tier with units > 0 costs
 *      units * unit_price + flat_fee (its flat fee is charged once, as soon as
 *      usage enters the tier); tiers without units cost nothing (b = 0 -> 0).
 *   5. volume:    the tier whose range contains b (bounds inclusive above:
 *      b == up_to[i] is in tier i) prices ALL b units:
 *      b * unit_price + that tier's flat_fee.  b = 0 -> 0, no tier applies.
 *   6. The charge amount is the exact sum, rounded once (half-even) to the
 *      minor unit.  With a minimum, if that amount is below round(minimum) the
 *      result carries a separate minimum true-up = round(minimum) - amount (an
 *      invoice line of its own); the charge amount itself is not raised.
 *   7. The plan base fee is a line of its own, rounded to the minor unit.
 *   8. subtotal = the sum of the rounded lines (charges, true-ups, base fee
 *      and any other line the caller adds, e.g. an adjustment, which may be
 *      negative); tax = subtotal * tax_rate rounded once (half-even) to the
 *      minor unit; total = subtotal + tax.
 *
 * Breakdown (sub-lines): for graduated, one entry per tier with units > 0; for
 * volume, the one tier applied; per_unit and package have none (package
 * reports its package count).  Each entry's exact amount is kept unrounded as
 * a decimal string with PRC_EXACT_SCALE places, fit for a numeric column, so
 * the lines' exact amounts add up to the charge's exact amount.
 *
 * Sizes: a prc_plan_charge is ~11 KB and a prc_result ~25 KB (PRC_MAX_TIERS tiers
 * inline); heap-allocate them in threads with small stacks.
 */
#ifndef ML_PRICE_H
#define ML_PRICE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "dec.h"

#define PRC_SCALE            12  /* places of every input (numeric(*,12)) */
#define PRC_EXACT_SCALE      24  /* places of an exact (unrounded) amount */
#define PRC_MAX_TIERS        100 /* as many as POST /v1/plans accepts */
#define PRC_QTY_INT_DIGITS   26  /* numeric(38,12): quantities, bounds, amounts */
#define PRC_PRICE_INT_DIGITS 18  /* numeric(30,12): prices, fees, minimums */
#define PRC_MAX_MINOR        4   /* largest ISO 4217 minor unit (CLF, UYW) */
#define PRC_EXACT_MAX        64  /* an exact amount's text: 26 + 1 + 24 digits + NUL */

enum {
    PRC_OK = 0,
    PRC_EINVAL = -1,    /* an input is malformed or out of range (err names it) */
    PRC_EOVERFLOW = -2, /* a rounded amount does not fit numeric(38,12) */
};

typedef enum prc_model {
    PRC_PER_UNIT = 0,
    PRC_GRADUATED,
    PRC_VOLUME,
    PRC_PACKAGE,
} prc_model;

typedef struct prc_tier {
    dec_t up_to;      /* upper bound, inclusive; meaningless when open */
    bool open;        /* up_to null: the last tier, unbounded */
    dec_t unit_price; /* >= 0 */
    dec_t flat_fee;   /* >= 0; 0 when absent */
} prc_tier;

/* One plan charge, as loaded by prc_charge_load (values normalized:
 * "1.50" -> 1.5).  Fields a model does not use are zero. */
typedef struct prc_plan_charge {
    prc_model model;
    dec_t unit_price;     /* per_unit, package */
    dec_t included_units; /* 0 when absent */
    dec_t package_size;   /* package: > 0 */
    bool has_minimum;
    dec_t minimum;
    size_t ntiers; /* graduated, volume: 1..PRC_MAX_TIERS */
    prc_tier tiers[PRC_MAX_TIERS];
} prc_plan_charge;

/* One sub-line of the breakdown: the part of a charge one tier prices. */
typedef struct prc_sub {
    size_t tier;                      /* index into charge.tiers */
    dec_t from;                       /* exclusive lower bound of the tier (0 for the first) */
    dec_t to;                         /* inclusive upper bound; meaningless when open */
    bool open;                        /* the tier is unbounded */
    dec_t units;                      /* units priced by this tier (> 0) */
    dec_t unit_price;                 /* the tier's */
    dec_t flat_fee;                   /* the tier's (charged since units > 0) */
    char amount_exact[PRC_EXACT_MAX]; /* units * unit_price + flat_fee, PRC_EXACT_SCALE places */
} prc_sub;

typedef struct prc_result {
    dec_t billable;                   /* b = max(0, q - included_units), normalized */
    dec_t amount;                     /* the charge, rounded; scale = minor units */
    char amount_exact[PRC_EXACT_MAX]; /* the exact sum, PRC_EXACT_SCALE places */
    bool has_true_up;                 /* a minimum applies and amount < round(minimum) */
    dec_t true_up;                    /* round(minimum) - amount, else 0; scale = minor */
    dec_t packages;                   /* package: ceil(b / package_size), else 0 */
    size_t nsubs;                     /* graduated: tiers used; volume: 0 or 1 */
    prc_sub subs[PRC_MAX_TIERS];
} prc_result;

/* Minor units of an ISO 4217 currency code ("USD" -> 2, "JPY" -> 0, "KWD" -> 3)
 * into *minor; PRC_EINVAL ("currency: ...") for an unknown code. */
int prc_minor_units(const char *currency, int *minor, char *err, size_t errlen);

/* Loads a plan_charges row.  model is "per_unit" | "graduated" | "volume" |
 * "package"; the decimals are strings as PostgreSQL returns them, NULL when
 * the column is NULL (included_units NULL means 0).  tiers is the jsonb array
 * [{"up_to": "1000" | null, "unit_price": "0.01", "flat_fee": "0"}, ...] as a
 * jansson value (NULL or JSON null when absent).  Tier values may be strings,
 * integers or numbers kept exact by jx_loadb; a jansson real is refused (it
 * lost digits).  Checks: the model's required fields are present and the
 * others absent (unit_price for per_unit/package, tiers for graduated/volume,
 * package_size > 0 for package); each tier is an object with exactly the keys
 * up_to (required, may be null), unit_price (required), flat_fee (optional);
 * up_to > 0 and strictly ascending, only the last null and the last null.
 * On error *c is unspecified and err names the field. */
int prc_charge_load(prc_plan_charge *c, const char *model, const char *unit_price,
                    const char *included_units, const char *package_size, const char *minimum,
                    const json_t *tiers, char *err, size_t errlen);

/* Prices charge c for quantity q (>= 0, at most 12 places, < 10^26) in a
 * currency with `minor` (0..PRC_MAX_MINOR) minor units.  On error *r is
 * unspecified.  PRC_EOVERFLOW when the rounded amount is >= 10^26. */
int prc_charge(int minor, const prc_plan_charge *c, const dec_t *q, prc_result *r, char *err,
               size_t errlen);

/* The plan's base fee (a numeric(30,12) string; NULL means 0) rounded
 * half-even to `minor` places into *out (scale = minor). */
int prc_base_fee(int minor, const char *base_fee, dec_t *out, char *err, size_t errlen);

/* Sums n already-rounded line amounts (each with at most `minor` places; any
 * sign) and applies tax_rate (0..1, at most 12 places): *subtotal, *tax and
 * *total, all with scale = minor.  PRC_EOVERFLOW when |subtotal| or |total|
 * reaches 10^26.  Outputs are written only on success. */
int prc_totals(int minor, const dec_t *lines, size_t n, const dec_t *tax_rate, dec_t *subtotal,
               dec_t *tax, dec_t *total, char *err, size_t errlen);

const char *prc_model_name(prc_model m);

#endif
