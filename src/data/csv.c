/* data_csv.c - CSV tables: numbers separated by commas, one sample per line, an optional header.
 *
 * The rules (docs/data.md): LF or CRLF line ends; spaces and tabs around a field are ignored; a UTF-8 byte
 * order mark is skipped; blank lines may end the file but not interrupt the data; a field in double quotes
 * is read without its quotes, but quotes or commas inside one are refused; every row has as many fields as
 * the first; every value is a finite number, and the label column's are whole numbers from 0 to 65535.
 * Messages count lines and columns from 1, as editors do. */
#include "data/data.h"
#include "io/io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* Longer fields cannot be numbers anyone meant to write, and a short copy lets strtod see a terminator. */
#define MAX_NUMBER_TEXT 128

/* More columns than this is not a table anyone meant to learn from; the limit keeps the per-line field list
 * (16 bytes a field, however short the field) from growing without bound on a line of commas. */
#define MAX_COLUMNS ((size_t)1 << 24)

/* Text shown in messages is cut to this many characters, and bytes that are not printable become '?'. */
#define SHOWN_TEXT 24

typedef struct field {
    const char *text;
    size_t len;
} field;

typedef struct csv_parser {
    const char *path;
    const char *p, *end;   /* the unread rest of the file */
    size_t line;           /* 1-based number of the line being read */
    field *fields;         /* the current line's fields */
    size_t n_fields, cap_fields;
    nr_status status;      /* why next_line failed */
} csv_parser;

static const char *show(const field *f, char buf[SHOWN_TEXT + 4])
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

/* Splits the next line into fields. Returns 0 at the end of the file, 1 for a line with fields, 2 for a
 * blank line, or -1 with c->status and the message set. */
static int next_line(csv_parser *c)
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

/* Reads a number written in decimal (or anything strtod takes). Plain integers, the common case in image
 * tables, skip strtod; they are exact. */
static bool parse_number(const field *f, double *value)
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

/* The label column: by header name (an exact match, which must be unique), else by 0-based index. */
static nr_status find_label(const csv_parser *c, const field *header, size_t cols, const char *label,
                            size_t header_line, size_t *index)
{
    if (!label) {
        *index = cols - 1;
        return NR_OK;
    }
    if (header) {
        size_t found = cols, len = strlen(label);
        for (size_t j = 0; j < cols; j++) {
            if (header[j].len == len && memcmp(header[j].text, label, len) == 0) {
                if (found < cols)
                    return nr__fail(NR_EINVAL, "%s: the label column '%s' is ambiguous: the header on line %zu has "
                                               "it in columns %zu and %zu", c->path, label, header_line, found + 1,
                                    j + 1);
                found = j;
            }
        }
        if (found < cols) {
            *index = found;
            return NR_OK;
        }
    }
    size_t v = 0;
    bool digits = *label != 0;
    for (const char *p = label; *p && digits; p++)
        digits = *p >= '0' && *p <= '9' && nr__mul(v, 10, &v) && nr__add(v, (size_t)(*p - '0'), &v);
    if (!digits) {
        if (header)
            return nr__fail(NR_EINVAL, "%s: no column named '%s' in the header on line %zu", c->path, label,
                            header_line);
        return nr__fail(NR_EINVAL, "%s: the label column '%s' is given by name, but the file has no header",
                        c->path, label);
    }
    if (v >= cols)
        return nr__fail(NR_EINVAL, "%s: label column %zu is out of range (the file has %zu columns, 0 to %zu)",
                        c->path, v, cols, cols - 1);
    *index = v;
    return NR_OK;
}

/* Growing storage for the rows read so far. */
typedef struct table {
    float *values;
    int32_t *labels;
    size_t rows, cap;
} table;

/* Makes room for one more row. `max_rows` is the most rows the file can hold, so that the doubling never
 * reserves far more than the file can fill (a first line of a million columns must not reserve 1024 rows). */
static nr_status table_reserve(table *t, size_t features, size_t max_rows, const char *path)
{
    if (t->rows < t->cap)
        return NR_OK;
    size_t cap = t->cap ? 2 * t->cap : 1024, values;
    if (cap > max_rows)
        cap = max_rows > t->rows ? max_rows : t->rows + 1;
    if (cap > NR__MAX_SAMPLES)
        cap = NR__MAX_SAMPLES;
    if (t->rows >= cap)
        return nr__fail(NR_EFORMAT, "%s: more than the limit of %zu samples", path, NR__MAX_SAMPLES);
    if (!nr__mul(cap, features, &values) || values > NR_MAX_FLOATS) {
        /* Grow only as far as the limit allows; refuse when even one more row would pass it. */
        cap = NR_MAX_FLOATS / features;
        if (t->rows >= cap)
            return nr__fail(NR_EFORMAT, "%s: more than the limit of %zu values", path, (size_t)NR_MAX_FLOATS);
        values = cap * features;
    }
    float *v = realloc(t->values, values * sizeof *v);
    if (!v)
        return nr__fail(NR_ENOMEM, "%s: out of memory after %zu rows", path, t->rows);
    t->values = v;
    int32_t *l = realloc(t->labels, cap * sizeof *l);
    if (!l)
        return nr__fail(NR_ENOMEM, "%s: out of memory after %zu rows", path, t->rows);
    t->labels = l;
    t->cap = cap;
    return NR_OK;
}

/* Reads one data line's fields into the next row of `t`. */
static nr_status take_row(const csv_parser *c, table *t, size_t cols, size_t first_line, size_t label,
                          size_t max_rows)
{
    if (c->n_fields != cols)
        return nr__fail(NR_EFORMAT, "%s: line %zu has %zu columns, expected %zu (as on line %zu)", c->path, c->line,
                        c->n_fields, cols, first_line);
    size_t features = label < cols ? cols - 1 : cols;  /* label == cols: the file has no label column */
    nr_status st = table_reserve(t, features, max_rows, c->path);
    if (st)
        return st;
    float *dst = t->values + t->rows * features;
    t->labels[t->rows] = 0;
    char shown[SHOWN_TEXT + 4];
    for (size_t j = 0; j < cols; j++) {
        const field *f = &c->fields[j];
        double v;
        if (f->len == 0)
            return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: empty field", c->path, c->line, j + 1);
        if (!parse_number(f, &v))
            return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: '%s' is not a number", c->path, c->line, j + 1,
                            show(f, shown));
        if (!isfinite(v))
            return nr__fail(NR_ENUMERIC, "%s: line %zu, column %zu: %s is not a finite number", c->path, c->line,
                            j + 1, show(f, shown));
        if (j == label) {
            const char *problem = nr__label_problem(v);
            if (problem)
                return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: label %s %s", c->path, c->line, j + 1,
                                show(f, shown), problem);
            t->labels[t->rows] = (int32_t)v;
        } else {
            float x = (float)v;
            if (!isfinite(x))
                return nr__fail(NR_ENUMERIC, "%s: line %zu, column %zu: %s is too large for a float32 number",
                                c->path, c->line, j + 1, show(f, shown));
            *dst++ = x;
        }
    }
    t->rows++;
    return NR_OK;
}

/* Whether every field of the current line reads as a number (finite or not): a first line that does not is
 * taken for a header when guessing. */
static bool all_numbers(const csv_parser *c)
{
    for (size_t j = 0; j < c->n_fields; j++) {
        double v;
        if (!parse_number(&c->fields[j], &v))
            return false;
    }
    return true;
}

/* What the first line says: the number of columns, whether it is a header, the label column, and the most
 * rows a file of this length can hold (a row is cols non-empty fields and cols - 1 commas). */
typedef struct csv_layout {
    size_t cols, first_line, label, max_rows;
    field *header;           /* a copy of the header's fields, or NULL */
} csv_layout;

static nr_status read_layout(csv_parser *c, const nr_data_options *options, size_t len, csv_layout *l)
{
    bool unlabeled = options && options->unlabeled;
    int header_opt = options ? options->header : 0;
    l->cols = c->n_fields;
    l->first_line = c->line;
    l->max_rows = len / (2 * l->cols - 1) + 1;
    if (l->cols < 2 && !unlabeled)
        return nr__fail(NR_EFORMAT, "%s: line %zu has 1 column; a data set needs a label column and at least one "
                                    "feature", c->path, c->line);
    if (header_opt == 1 || (header_opt == 0 && !all_numbers(c))) {
        if (!(l->header = malloc(l->cols * sizeof *l->header)))
            return nr__fail(NR_ENOMEM, "%s: out of memory", c->path);
        memcpy(l->header, c->fields, l->cols * sizeof *l->header);
    }
    if (unlabeled) {
        l->label = l->cols;  /* no column is the label */
        return NR_OK;
    }
    return find_label(c, l->header, l->cols, options ? options->label : NULL, c->line, &l->label);
}

/* Every line after the layout's: rows of numbers, blank lines only at the end. */
static nr_status read_rows(csv_parser *c, csv_layout *l, table *t, bool first_is_data)
{
    size_t blank_line = 0;
    nr_status st = first_is_data ? take_row(c, t, l->cols, l->first_line, l->label, l->max_rows) : NR_OK;
    for (int kind; !st && (kind = next_line(c)) != 0;) {
        if (kind < 0)
            return c->status;
        if (kind == 2) {
            blank_line = blank_line ? blank_line : c->line;
            continue;
        }
        if (blank_line)
            return nr__fail(NR_EFORMAT, "%s: line %zu is blank, but data follows on line %zu (blank lines may only "
                                        "end the file)", c->path, blank_line, c->line);
        st = take_row(c, t, l->cols, l->first_line, l->label, l->max_rows);
    }
    if (!st && t->rows == 0)
        return nr__fail(NR_EFORMAT, "%s: no data rows", c->path);
    return st;
}

/* The rows as a data set, giving back what the doubling reserved beyond the last row. */
static nr_status make_dataset(table *t, size_t features, const char *path, nr_dataset **out)
{
    nr_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return nr__fail(NR_ENOMEM, "%s: out of memory", path);
    float *v = realloc(t->values, t->rows * features * sizeof *v);  /* a failed shrink keeps the larger block */
    int32_t *l = realloc(t->labels, t->rows * sizeof *l);
    d->f32 = v ? v : t->values;
    d->labels = l ? l : t->labels;
    t->values = NULL;
    t->labels = NULL;
    d->n = t->rows;
    d->features = features;
    d->shape[0] = d->shape[1] = 1;
    d->shape[2] = features;
    nr__data_count_classes(d);
    *out = d;
    return NR_OK;
}

/* The first line, which must not be blank unless nothing follows. */
static nr_status first_line(csv_parser *c)
{
    size_t blank_line = 0;
    for (;;) {
        int kind = next_line(c);
        if (kind < 0)
            return c->status;
        if (kind == 0)
            return nr__fail(NR_EFORMAT, "%s: no data rows", c->path);
        if (kind == 1 && blank_line)
            return nr__fail(NR_EFORMAT, "%s: line %zu is blank, but data follows on line %zu (blank lines may only "
                                        "end the file)", c->path, blank_line, c->line);
        if (kind == 1)
            return NR_OK;
        blank_line = blank_line ? blank_line : c->line;
    }
}

nr_status nr__data_load_csv(const char *path, const nr_data_options *options, nr_dataset **out)
{
    *out = NULL;
    unsigned char *text;
    size_t len;
    /* The whole text is read at once; the values it holds take about as much memory again. */
    nr_status st = nr__read_file(path, (size_t)1 << 38, &text, &len);
    if (st)
        return st;
    csv_parser c = {.path = path, .p = (const char *)text, .end = (const char *)text + len};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3;
    csv_layout l = {0};
    table t = {0};
    if (!(st = first_line(&c)) && !(st = read_layout(&c, options, len, &l)) &&
        !(st = read_rows(&c, &l, &t, l.header == NULL)))
        st = make_dataset(&t, l.label < l.cols ? l.cols - 1 : l.cols, path, out);
    free(t.values);
    free(t.labels);
    free(l.header);
    free(c.fields);
    free(text);
    return st;
}
