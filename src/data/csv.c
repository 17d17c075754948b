/* csv.c - the CSV tokenizer: lines, fields and numbers (csv_table.c makes a data set of them).
 *
 * The rules (docs/data.md): LF or CRLF line ends; spaces and tabs around a field are ignored; a field in
 * double quotes is read without its quotes, but quotes or commas inside one are refused. Messages count lines
 * and columns from 1, as editors do. */
#include "data/csv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* Longer fields cannot be numbers anyone meant to write, and a short copy lets strtod see a terminator. */
#define MAX_NUMBER_TEXT 128

/* More columns than this is not a table anyone meant to learn from; the limit keeps the per-line field list
 * (16 bytes a field, however short the field) from growing without bound on a line of commas. */
#define MAX_COLUMNS ((size_t)1 << 24)

const char *nr__csv_show(const field *f, char buf[SHOWN_TEXT + 4])
{
    size_t n = f->len < SHOWN_TEXT ? f->len : SHOWN_TEXT;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f->text[i];
        buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    strcpy(buf + n, f->len > n ? "..." : "");
    return buf;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Appends a field to the line's list, growing it as needed; false with c->status set on failure. */
static bool push_field(csv_parser *c, field f)
{
    if (c->n_fields == MAX_COLUMNS) {
        c->status = nr__fail(NR_EFORMAT, "%s: line %zu has more than %zu columns", c->path, c->line, MAX_COLUMNS);
        return false;
    }
    if (c->n_fields == c->cap_fields) {
        size_t cap = c->cap_fields ? 2 * c->cap_fields : 64;
        field *grown = realloc(c->fields, cap * sizeof *grown);
        if (!grown) {
            c->status = nr__fail(NR_ENOMEM, "%s: line %zu: out of memory for its fields", c->path, c->line);
            return false;
        }
        c->fields = grown;
        c->cap_fields = cap;
    }
    c->fields[c->n_fields++] = f;
    return true;
}

/* A field in double quotes starting at *s (the quotes are not part of it); *s moves past it and the blanks
 * after. Quotes or commas inside are refused. */
static bool quoted_field(csv_parser *c, const char **s, const char *e, field *f)
{
    const char *close = memchr(*s + 1, '"', (size_t)(e - *s - 1));
    if (!close) {
        c->status = nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: a quote is not closed", c->path, c->line,
                             c->n_fields + 1);
        return false;
    }
    f->text = *s + 1;
    f->len = (size_t)(close - *s - 1);
    *s = close + 1;
    while (*s < e && is_blank(**s))
        (*s)++;
    if (memchr(f->text, ',', f->len) || (*s < e && **s != ',')) {
        c->status = nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: quoted fields with commas or quotes inside are "
                             "not supported", c->path, c->line, c->n_fields + 1);
        return false;
    }
    return true;
}

/* Splits the line [s, e) into fields; false with c->status set on failure. */
static bool split_fields(csv_parser *c, const char *s, const char *e)
{
    c->n_fields = 0;
    for (;;) {
        while (s < e && is_blank(*s))
            s++;
        field f;
        if (s < e && *s == '"') {
            if (!quoted_field(c, &s, e, &f))
                return false;
        } else {
            const char *comma = memchr(s, ',', (size_t)(e - s));
            const char *stop = comma ? comma : e;
            f.text = s;
            f.len = (size_t)(stop - s);
            while (f.len && is_blank(f.text[f.len - 1]))
                f.len--;
            s = stop;
        }
        if (!push_field(c, f))
            return false;
        if (s >= e)
            return true;
        s++;  /* the comma */
    }
}

int nr__csv_next_line(csv_parser *c)
{
    if (c->p >= c->end)
        return 0;
    c->line++;
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    const char *s = c->p, *e = nl ? nl : c->end;
    c->p = nl ? nl + 1 : c->end;
    if (e > s && e[-1] == '\r')
        e--;
    const char *q = s;
    while (q < e && is_blank(*q))
        q++;
    if (q == e)
        return 2;
    return split_fields(c, s, e) ? 1 : -1;
}

/* Plain integers, the common case in image tables, skip strtod; they are exact. */
bool nr__csv_number(const field *f, double *value)
{
    const char *s = f->text;
    size_t n = f->len, i = 0;
    bool negative = false;
    if (n && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        i = 1;
    }
    if (n > i && n - i <= 15) {
        double v = 0;
        size_t k = i;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            v = v * 10 + (s[k++] - '0');
        if (k == n) {
            *value = negative ? -v : v;
            return true;
        }
    }
    if (n == 0 || n >= MAX_NUMBER_TEXT || is_blank(s[0]))
        return false;
    char buf[MAX_NUMBER_TEXT];
    memcpy(buf, s, n);
    buf[n] = 0;
    char *stop;
    errno = 0;
    *value = strtod(buf, &stop);
    return stop == buf + n;
}

bool nr__csv_missing(const field *f)
{
    return f->len == 0 || (f->len == 1 && f->text[0] == '?') ||
           (f->len == 2 && (memcmp(f->text, "NA", 2) == 0 || memcmp(f->text, "na", 2) == 0)) ||
           (f->len == 3 && (memcmp(f->text, "N/A", 3) == 0 || memcmp(f->text, "n/a", 3) == 0));
}
