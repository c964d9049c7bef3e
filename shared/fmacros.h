/* fmacros.h — included first by every .c file of Meterline.
 *
 * Feature macros and the few project-wide bans: sprintf/strcpy/strcat are
 * poisoned (use snprintf / memcpy with known lengths / buf_*).  Nothing else.
 */
#ifndef ML_FMACROS_H
#define ML_FMACROS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#if defined(__GNUC__)
#pragma GCC poison sprintf strcpy strcat vsprintf gets
#endif

#define ML_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ML_UNUSED(x)    ((void)(x))

/* "cannot happen" branches: counted in tests, harmless in production. */
#define ML_NEVER(x) __builtin_expect(!!(x), 0)

#endif
