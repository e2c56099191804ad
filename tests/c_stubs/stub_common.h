/* Shared recorder of the C stubs (tests/c_stubs/ qutag, atmcd, shamrock): a call log and settable
 * return codes / output values.  Each stub library includes it once, so each .so has
 * its own state.  Exported for the tests:
 *   stub_reset()                      forget the log, the return codes and the values
 *   stub_set_return(fn, code)         make function `fn` return `code` (until reset)
 *   stub_set_value(key, value)        an int64 the stub writes to an output (see each stub)
 *   stub_set_double(key, value)       a double the stub writes to an output
 *   stub_log_count(), stub_log_line(i)  the calls received, one text line each:
 *       NAME key=value key=value ...  (int: decimal, double: %.17g, pointer: ptr|NULL,
 *       string: "text" with its length as key_len=N)
 */
#ifndef STUB_COMMON_H
#define STUB_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define STUB_MAX_LINES 4096
#define STUB_LINE_LEN 512
#define STUB_MAX_KEYS 64

static char stub_lines[STUB_MAX_LINES][STUB_LINE_LEN];
static int stub_n_lines = 0;
static char stub_ret_names[STUB_MAX_KEYS][64];
static int stub_ret_codes[STUB_MAX_KEYS];
static int stub_n_ret = 0;
static char stub_val_names[STUB_MAX_KEYS][64];
static long long stub_val_ints[STUB_MAX_KEYS];
static double stub_val_doubles[STUB_MAX_KEYS];
static int stub_n_val = 0;

void stub_reset(void) { stub_n_lines = 0; stub_n_ret = 0; stub_n_val = 0; }

void stub_set_return(const char *fn, int code) {
    for (int i = 0; i < stub_n_ret; i++)
        if (strcmp(stub_ret_names[i], fn) == 0) { stub_ret_codes[i] = code; return; }
    if (stub_n_ret < STUB_MAX_KEYS) {
        snprintf(stub_ret_names[stub_n_ret], 64, "%s", fn);
        stub_ret_codes[stub_n_ret++] = code;
    }
}

static inline int stub_slot(const char *key) {
    for (int i = 0; i < stub_n_val; i++)
        if (strcmp(stub_val_names[i], key) == 0) return i;
    if (stub_n_val >= STUB_MAX_KEYS) return -1;
    snprintf(stub_val_names[stub_n_val], 64, "%s", key);
    stub_val_ints[stub_n_val] = 0;
    stub_val_doubles[stub_n_val] = 0.0;
    return stub_n_val++;
}

void stub_set_value(const char *key, long long value) {
    int i = stub_slot(key);
    if (i >= 0) { stub_val_ints[i] = value; stub_val_doubles[i] = (double)value; }
}

void stub_set_double(const char *key, double value) {
    int i = stub_slot(key);
    if (i >= 0) { stub_val_doubles[i] = value; stub_val_ints[i] = (long long)value; }
}

static inline long long stub_int(const char *key, long long fallback) {
    for (int i = 0; i < stub_n_val; i++)
        if (strcmp(stub_val_names[i], key) == 0) return stub_val_ints[i];
    return fallback;
}

static inline double stub_double(const char *key, double fallback) {
    for (int i = 0; i < stub_n_val; i++)
        if (strcmp(stub_val_names[i], key) == 0) return stub_val_doubles[i];
    return fallback;
}

/* The return code of `fn`: the one set by stub_set_return, else `fallback`. */
static inline int stub_ret(const char *fn, int fallback) {
    for (int i = 0; i < stub_n_ret; i++)
        if (strcmp(stub_ret_names[i], fn) == 0) return stub_ret_codes[i];
    return fallback;
}

static void stub_log(const char *fmt, ...) {
    if (stub_n_lines >= STUB_MAX_LINES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(stub_lines[stub_n_lines++], STUB_LINE_LEN, fmt, ap);
    va_end(ap);
}

#define STUB_PTR(p) ((p) ? "ptr" : "NULL")

int stub_log_count(void) { return stub_n_lines; }

const char *stub_log_line(int i) { return (i >= 0 && i < stub_n_lines) ? stub_lines[i] : ""; }

/* Copy `text` into a caller's buffer of `size` bytes (always NUL-terminated). */
static inline void stub_copy_text(char *dest, int size, const char *text) {
    if (!dest || size <= 0) return;
    snprintf(dest, (size_t)size, "%s", text);
}

#endif
