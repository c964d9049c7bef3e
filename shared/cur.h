/* cur.h — ISO 4217 currencies and their minor units (prefix cur_).
 *
 * DESIGN — A sorted static table searched with bsearch; pure and thread-safe.
 * The minor unit is how many decimal places an amount in that currency is
 * rounded to on an invoice (USD 2, JPY 0, KWD 3).
 */
#ifndef ML_CUR_H
#define ML_CUR_H
/* Minor units (0..4) of an active ISO 4217 code such as "USD", or -1. */
int cur_minor_units(const char *code);
#endif
