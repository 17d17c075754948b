/* csv_table.c - a data set from a CSV table: one sample per line, an optional header, the label column(s)
 * named by options->label.
 *
 * Columns are read as they come: a feature column of numbers stays numbers; a column with text in it becomes
 * one input per distinct value (one-hot, in sorted order); a label column of text names the classes (its
 * sorted distinct values); regression targets are numbers. Missing values (empty, NA, N/A, ?) are refused
 * with their line and column unless options->missing drops their rows or fills them (a column's mean, a text
 * column's most frequent value). All of that is the data's encoding, which the network keeps, so that a file
 * read for a trained model (options->model) is encoded the same way and a value it never saw is refused.
 *
 * The file is read in passes over its text: the layout (the first line), then a scan (which columns hold
 * text, their distinct values, the means), then the rows. Blank lines may end the file but not interrupt
 * the data; every row has as many fields as the first. */
#include "data/csv.h"
#include "io/io.h"

#include <math.h>
#include <stdlib.h>

/* A column of more distinct values than this is an identifier, not a category: one input each would make
 * the network wider than the data is long. */
#define MAX_CATEGORIES 4096
/* The most label (target) columns a regression may name. */
#define MAX_TARGETS 64

/* ---- the layout: columns, header, labels ---- */

typedef struct csv_layout {
    const char *first_p;     /* where the first line starts, for each pass over the rows */
    size_t cols, first_line, max_rows;
    field *header;           /* a copy of the header's fields, or NULL */
    size_t labels[MAX_TARGETS];  /* the label (or target) columns */
    size_t n_labels;         /* 0: unlabeled */
    bool *is_label;          /* per column */
} csv_layout;

/* One label column: by header name (an exact match, which must be unique), else by 0-based index. */
static nr_status find_column(const csv_parser *c, const csv_layout *l, const char *name, size_t len, size_t *index)
{
    if (l->header) {
        size_t found = l->cols;
        for (size_t j = 0; j < l->cols; j++)
            if (l->header[j].len == len && memcmp(l->header[j].text, name, len) == 0) {
                if (found < l->cols)
                    return nr__fail(NR_EINVAL, "%s: the label column '%.*s' is ambiguous: the header on line %zu has "
                                               "it in columns %zu and %zu", c->path, (int)len, name, l->first_line,
                                    found + 1, j + 1);
                found = j;
            }
        if (found < l->cols) {
            *index = found;
            return NR_OK;
        }
    }
    size_t v = 0;
    bool digits = len > 0;
    for (size_t i = 0; i < len && digits; i++)
        digits = name[i] >= '0' && name[i] <= '9' && nr__mul(v, 10, &v) && nr__add(v, (size_t)(name[i] - '0'), &v);
    if (!digits && l->header)
        return nr__fail(NR_EINVAL, "%s: no column named '%.*s' in the header on line %zu", c->path, (int)len, name,
                        l->first_line);
    if (!digits)
        return nr__fail(NR_EINVAL, "%s: the label column '%.*s' is given by name, but the file has no header",
                        c->path, (int)len, name);
    if (v >= l->cols)
        return nr__fail(NR_EINVAL, "%s: label column %zu is out of range (the file has %zu columns, 0 to %zu)",
                        c->path, v, l->cols, l->cols - 1);
    *index = v;
    return NR_OK;
}

/* The label columns: the last, or those options->label names (several, comma-separated, for regression). */
static nr_status find_labels(const csv_parser *c, csv_layout *l, const nr_data_options *o)
{
    const char *spec = o ? o->label : NULL;
    if (!spec) {
        l->labels[l->n_labels++] = l->cols - 1;
    } else {
        for (const char *p = spec;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (l->n_labels == MAX_TARGETS)
                return nr__fail(NR_EINVAL, "%s: more than %d label columns", c->path, MAX_TARGETS);
            nr_status st = find_column(c, l, p, len, &l->labels[l->n_labels]);
            if (st)
                return st;
            l->n_labels++;
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    bool regress = o && (o->task == NR_TASK_REGRESS || (o->model && o->model->n_targets));
    if (l->n_labels > 1 && !regress)
        return nr__fail(NR_EINVAL, "%s: %zu label columns: only a regression has several targets", c->path,
                        l->n_labels);
    for (size_t i = 0; i < l->n_labels; i++) {
        if (l->is_label[l->labels[i]])
            return nr__fail(NR_EINVAL, "%s: column %zu is named twice as a label", c->path, l->labels[i] + 1);
        l->is_label[l->labels[i]] = true;
    }
    if (l->n_labels >= l->cols)
        return nr__fail(NR_EFORMAT, "%s: every column is a label: no feature is left", c->path);
    return NR_OK;
}

/* Whether every field of the current line reads as a number (finite or not): a first line that does not is
 * taken for a header when guessing. */
static bool all_numbers(const csv_parser *c)
{
    for (size_t j = 0; j < c->n_fields; j++) {
        double v;
        if (!nr__csv_number(&c->fields[j], &v))
            return false;
    }
    return true;
}

/* What the first line says: the number of columns, whether it is a header, the label columns, and the most
 * rows a file of this length can hold (a row is cols non-empty fields and cols - 1 commas). */
static nr_status read_layout(csv_parser *c, const nr_data_options *o, size_t len, csv_layout *l)
{
    bool unlabeled = o && o->unlabeled;
    int header_opt = o ? o->header : 0;
    l->cols = c->n_fields;
    l->first_line = c->line;
    l->max_rows = len / (2 * l->cols - 1) + 1;
    if (l->cols < 2 && !unlabeled)
        return nr__fail(NR_EFORMAT, "%s: line %zu has 1 column; a data set needs a label column and at least one "
                                    "feature", c->path, c->line);
    if (!(l->is_label = calloc(l->cols, sizeof *l->is_label)))
        return nr__fail(NR_ENOMEM, "%s: out of memory", c->path);
    if (header_opt == 1 || (header_opt == 0 && !all_numbers(c))) {
        if (!(l->header = malloc(l->cols * sizeof *l->header)))
            return nr__fail(NR_ENOMEM, "%s: out of memory", c->path);
        memcpy(l->header, c->fields, l->cols * sizeof *l->header);
    }
    return unlabeled ? NR_OK : find_labels(c, l, o);
}

/* The first line, which must not be blank unless nothing follows; *start receives where it begins. */
static nr_status first_line(csv_parser *c, const char **start)
{
    size_t blank_line = 0;
    for (;;) {
        *start = c->p;
        int kind = nr__csv_next_line(c);
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

/* Calls row(ctx) for every data line after the layout (the first line too unless it is a header), checking
 * that blank lines only end the file and every row has as many columns as the first. */
static nr_status for_each_row(csv_parser *c, const csv_layout *l, nr_status (*row)(csv_parser *, void *), void *ctx)
{
    c->p = l->first_p;  /* every pass reads from the first line */
    c->line = l->first_line - 1;
    nr__csv_next_line(c);
    nr_status st = l->header ? NR_OK : row(c, ctx);
    size_t blank_line = 0;
    for (int kind; !st && (kind = nr__csv_next_line(c)) != 0;) {
        if (kind < 0)
            return c->status;
        if (kind == 2) {
            blank_line = blank_line ? blank_line : c->line;
            continue;
        }
        if (blank_line)
            return nr__fail(NR_EFORMAT, "%s: line %zu is blank, but data follows on line %zu (blank lines may only "
                                        "end the file)", c->path, blank_line, c->line);
        if (c->n_fields != l->cols)
            return nr__fail(NR_EFORMAT, "%s: line %zu has %zu columns, expected %zu (as on line %zu)", c->path,
                            c->line, c->n_fields, l->cols, l->first_line);
        st = row(c, ctx);
    }
    return st;
}

/* ---- the scan: which columns hold text, their values, the means ---- */

/* A column's distinct text values, as slices of the file, in a small open-addressing table. */
typedef struct value_set {
    field *slots;
    size_t *counts;
    size_t cap, size;
} value_set;

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static bool set_grow(value_set *v)
{
    size_t cap = v->cap ? 2 * v->cap : 16;
    field *slots = calloc(cap, sizeof *slots);
    size_t *counts = calloc(cap, sizeof *counts);
    if (!slots || !counts) {
        free(slots);
        free(counts);
        return false;
    }
    for (size_t i = 0; i < v->cap; i++)
        if (v->slots[i].text) {
            size_t k = hash(v->slots[i].text, v->slots[i].len) & (cap - 1);
            while (slots[k].text)
                k = (k + 1) & (cap - 1);
            slots[k] = v->slots[i];
            counts[k] = v->counts[i];
        }
    free(v->slots);
    free(v->counts);
    v->slots = slots;
    v->counts = counts;
    v->cap = cap;
    return true;
}

/* Adds one occurrence of a value; false if out of memory. */
static bool set_add(value_set *v, const field *f)
{
    if (2 * (v->size + 1) > v->cap && !set_grow(v))
        return false;
    size_t k = hash(f->text, f->len) & (v->cap - 1);
    while (v->slots[k].text && !(v->slots[k].len == f->len && memcmp(v->slots[k].text, f->text, f->len) == 0))
        k = (k + 1) & (v->cap - 1);
    if (!v->slots[k].text) {
        v->slots[k] = *f;
        v->size++;
    }
    v->counts[k]++;
    return true;
}

static void set_free(value_set *v)
{
    free(v->slots);
    free(v->counts);
}

/* What the scan learns of one column. */
typedef struct column_scan {
    size_t text, missing, numbers;
    double sum;
    value_set values;        /* text columns (and text labels): every value, numbers written as they are */
} column_scan;

typedef struct scan {
    const csv_layout *l;
    const nr_data_options *o;
    column_scan *cols;
    bool values;             /* second pass: collect the values of the columns with text */
} scan;

/* Text values are words people wrote: a field with control characters is a damaged or binary file. */
static bool plain_text(const field *f)
{
    for (size_t i = 0; i < f->len; i++)
        if ((unsigned char)f->text[i] < 0x20 || f->text[i] == 0x7f)
            return false;
    return true;
}

static nr_status scan_row(csv_parser *c, void *ctx)
{
    scan *s = ctx;
    for (size_t j = 0; j < s->l->cols; j++) {
        const field *f = &c->fields[j];
        column_scan *col = &s->cols[j];
        double v;
        char shown[SHOWN_TEXT + 4];
        if (!s->values && !plain_text(f))
            return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: '%s' is neither a number nor plain text", c->path,
                            c->line, j + 1, nr__csv_show(f, shown));
        if (s->values) {
            if (col->text && !nr__csv_missing(f) && !set_add(&col->values, f))
                return nr__fail(NR_ENOMEM, "%s: out of memory for the values of column %zu", c->path, j + 1);
        } else if (nr__csv_missing(f)) {
            col->missing++;
        } else if (nr__csv_number(f, &v) && isfinite(v)) {
            col->numbers++;
            col->sum += v;
        } else if (!nr__csv_number(f, &v)) {
            col->text++;
        }
    }
    return NR_OK;
}

/* ---- the encoding ---- */

static int compare_fields(const void *a, const void *b)
{
    const field *x = a, *y = b;
    int c = memcmp(x->text, y->text, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A column's values, sorted, as strings; *most receives the index of the most frequent. */
static char **sorted_values(const value_set *v, size_t *most)
{
    field *sorted = malloc((v->size ? v->size : 1) * sizeof *sorted);
    char **names = calloc(v->size ? v->size : 1, sizeof *names);
    size_t k = 0, best = 0;
    for (size_t i = 0; sorted && i < v->cap; i++)
        if (v->slots[i].text)
            sorted[k++] = v->slots[i];
    if (sorted)
        qsort(sorted, k, sizeof *sorted, compare_fields);
    for (size_t i = 0; sorted && names && i < k; i++) {
        if (!(names[i] = strndup(sorted[i].text, sorted[i].len))) {
            nr__free_strings(names, i);
            names = NULL;
            break;
        }
        size_t slot = hash(sorted[i].text, sorted[i].len) & (v->cap - 1);
        while (compare_fields(&v->slots[slot], &sorted[i]) != 0)
            slot = (slot + 1) & (v->cap - 1);
        size_t best_slot = hash(sorted[best].text, sorted[best].len) & (v->cap - 1);
        while (compare_fields(&v->slots[best_slot], &sorted[best]) != 0)
            best_slot = (best_slot + 1) & (v->cap - 1);
        if (v->counts[slot] > v->counts[best_slot])
            best = i;
    }
    if (!sorted)
        nr__free_strings(names, 0), names = NULL;
    free(sorted);
    *most = best;
    return names;
}

static char *header_name(const csv_layout *l, size_t j)
{
    return l->header ? strndup(l->header[j].text, l->header[j].len) : NULL;
}

/* The encoding the scan implies: a text column one-hot over its sorted values; the fill values for
 * NR_MISSING_MEAN. NULL (no encoding needed) for a table of numbers read without a missing-value rule. */
static nr_status make_encoding(const csv_parser *c, const csv_layout *l, const column_scan *cols, int missing,
                               nr__encoding **out)
{
    bool text = false;
    for (size_t j = 0; j < l->cols; j++)
        text |= !l->is_label[j] && cols[j].text > 0;
    *out = NULL;
    if (!text && missing == NR_MISSING_REFUSE)
        return NR_OK;
    nr__encoding *e = calloc(1, sizeof *e);
    if (!e || !(e->columns = calloc(l->cols, sizeof *e->columns)))
        return free(e), nr__fail(NR_ENOMEM, "%s: out of memory", c->path);
    e->missing = missing;
    for (size_t j = 0; j < l->cols; j++) {
        if (l->is_label[j])
            continue;
        nr__column *col = &e->columns[e->n_columns++];
        const column_scan *s = &cols[j];
        if (l->header && !(col->name = header_name(l, j)))
            return nr__encoding_free(e), nr__fail(NR_ENOMEM, "%s: out of memory", c->path);
        if (!s->text) {
            col->fill = s->numbers ? (float)(s->sum / (double)s->numbers) : 0.0f;
            continue;
        }
        if (s->values.size > MAX_CATEGORIES) {
            nr__encoding_free(e);
            return nr__fail(NR_EFORMAT, "%s: column %zu holds %zu distinct values, more than %d: an identifier, not a "
                                        "category (leave it out of the file)", c->path, j + 1, s->values.size,
                            MAX_CATEGORIES);
        }
        size_t most;
        if (!(col->categories = sorted_values(&s->values, &most)))
            return nr__encoding_free(e), nr__fail(NR_ENOMEM, "%s: out of memory", c->path);
        col->n_categories = s->values.size;
        col->fill = (float)most;
    }
    *out = e;
    return NR_OK;
}

/* ---- the rows ---- */

/* Growing storage for the rows read so far. */
typedef struct table {
    float *values;
    int32_t *labels;
    float *targets;
    size_t rows, cap, features, n_targets;
} table;

/* Makes room for one more row. `max_rows` is the most rows the file can hold, so that the doubling never
 * reserves far more than the file can fill (a first line of a million columns must not reserve 1024 rows). */
static nr_status table_reserve(table *t, size_t max_rows, const char *path)
{
    if (t->rows < t->cap)
        return NR_OK;
    size_t cap = t->cap ? 2 * t->cap : 1024, values, features = t->features ? t->features : 1;
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
    if (v)
        t->values = v;
    int32_t *l = v ? realloc(t->labels, cap * sizeof *l) : NULL;
    if (l)
        t->labels = l;
    float *g = l && t->n_targets ? realloc(t->targets, cap * t->n_targets * sizeof *g) : NULL;
    if (g)
        t->targets = g;
    if (!v || !l || (t->n_targets && !g))
        return nr__fail(NR_ENOMEM, "%s: out of memory after %zu rows", path, t->rows);
    t->cap = cap;
    return NR_OK;
}

/* Filling the rows: the layout, the encoding (NULL: every feature a number), the class names. */
typedef struct filler {
    const csv_layout *l;
    const nr__encoding *e;
    char **classes;          /* text labels: the sorted class names; NULL: numeric labels */
    size_t n_classes;
    bool regress;
    int missing;
    table t;
} filler;

static nr_status missing_value(const csv_parser *c, size_t j)
{
    return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: %s (a missing value: --missing drop or mean handles it)",
                    c->path, c->line, j + 1, c->fields[j].len ? "missing value" : "empty field");
}

/* A number for a numeric feature or target, finite and within float32. */
static nr_status read_number(const csv_parser *c, size_t j, bool target, float *out)
{
    const field *f = &c->fields[j];
    char shown[SHOWN_TEXT + 4];
    double v;
    if (!nr__csv_number(f, &v))
        return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: '%s' is not a number%s", c->path, c->line, j + 1,
                        nr__csv_show(f, shown), target ? " (regression targets are numbers)" : "");
    if (!isfinite(v))
        return nr__fail(NR_ENUMERIC, "%s: line %zu, column %zu: %s is not a finite number", c->path, c->line, j + 1,
                        nr__csv_show(f, shown));
    if (!isfinite((float)v))
        return nr__fail(NR_ENUMERIC, "%s: line %zu, column %zu: %s is too large for a float32 number", c->path,
                        c->line, j + 1, nr__csv_show(f, shown));
    *out = (float)v;
    return NR_OK;
}

/* The class of a label field: its number, or its index among the class names. */
static nr_status read_label(const csv_parser *c, const filler *fl, size_t j, int32_t *label)
{
    const field *f = &c->fields[j];
    char shown[SHOWN_TEXT + 4];
    if (fl->classes) {
        nr__column names = {.categories = fl->classes, .n_categories = fl->n_classes};
        long k = nr__category_index(&names, f->text, f->len);
        if (k < 0)
            return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: '%s' is not one of the model's classes", c->path,
                            c->line, j + 1, nr__csv_show(f, shown));
        *label = (int32_t)k;
        return NR_OK;
    }
    double v;
    if (!nr__csv_number(f, &v))
        return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: '%s' is not a number", c->path, c->line, j + 1,
                        nr__csv_show(f, shown));
    if (!isfinite(v))
        return nr__fail(NR_ENUMERIC, "%s: line %zu, column %zu: %s is not a finite number", c->path, c->line, j + 1,
                        nr__csv_show(f, shown));
    const char *problem = nr__label_problem(v);
    if (problem)
        return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: label %s %s", c->path, c->line, j + 1,
                        nr__csv_show(f, shown), problem);
    *label = (int32_t)v;
    return NR_OK;
}

/* One feature column into dst (1 value, or one per category); *used receives how many. */
static nr_status read_feature(const csv_parser *c, const filler *fl, size_t j, const nr__column *col, float *dst,
                              size_t *used)
{
    const field *f = &c->fields[j];
    bool missing = nr__csv_missing(f);
    if (missing && fl->missing != NR_MISSING_MEAN)
        return missing_value(c, j);
    if (!col || !col->categories) {
        *used = 1;
        if (!missing)
            return read_number(c, j, false, dst);
        *dst = col ? col->fill : 0.0f;
        return NR_OK;
    }
    long k = missing ? (long)col->fill : nr__category_index(col, f->text, f->len);
    char shown[SHOWN_TEXT + 4];
    if (k < 0)
        return nr__fail(NR_EFORMAT, "%s: line %zu, column %zu: '%s' is a value the model never saw in this column (it "
                                    "knows %zu)", c->path, c->line, j + 1, nr__csv_show(f, shown), col->n_categories);
    memset(dst, 0, col->n_categories * sizeof *dst);
    dst[k] = 1.0f;
    *used = col->n_categories;
    return NR_OK;
}

/* Whether the row must be left out: NR_MISSING_DROP and a missing value in it (a missing label is never
 * filled). */
static bool drop_row(const csv_parser *c, const filler *fl)
{
    for (size_t j = 0; j < fl->l->cols; j++)
        if (nr__csv_missing(&c->fields[j]) && (fl->missing == NR_MISSING_DROP || fl->l->is_label[j]) &&
            fl->missing != NR_MISSING_REFUSE)
            return true;
    return false;
}

static nr_status fill_row(csv_parser *c, void *ctx)
{
    filler *fl = ctx;
    table *t = &fl->t;
    if (drop_row(c, fl))
        return NR_OK;
    nr_status st = table_reserve(t, fl->l->max_rows, c->path);
    if (st)
        return st;
    float *dst = t->values + t->rows * t->features, *targets = t->targets ? t->targets + t->rows * t->n_targets : NULL;
    size_t column = 0, target = 0;
    t->labels[t->rows] = 0;
    for (size_t j = 0; !st && j < fl->l->cols; j++) {
        size_t used = 0;
        if (!fl->l->is_label[j]) {
            st = read_feature(c, fl, j, fl->e ? &fl->e->columns[column++] : NULL, dst, &used);
            dst += used;
        } else if (nr__csv_missing(&c->fields[j])) {
            st = missing_value(c, j);
        } else if (fl->regress) {
            st = read_number(c, j, true, &targets[target++]);
        } else {
            st = read_label(c, fl, j, &t->labels[t->rows]);
        }
    }
    if (!st)
        t->rows++;
    return st;
}

/* ---- the data set ---- */

/* The scan: which columns hold text, then (if any do) their values. */
static nr_status scan_columns(csv_parser *c, const csv_layout *l, const nr_data_options *o, column_scan *cols)
{
    scan s = {l, o, cols, false};
    nr_status st = for_each_row(c, l, scan_row, &s);
    bool text = false;
    for (size_t j = 0; j < l->cols; j++)
        text |= cols[j].text > 0;
    if (!st && text) {
        s.values = true;
        st = for_each_row(c, l, scan_row, &s);
    }
    return st;
}

/* Text labels name the classes: their sorted distinct values. */
static nr_status class_names(const csv_parser *c, const csv_layout *l, const column_scan *cols, filler *fl)
{
    if (fl->regress || l->n_labels == 0 || cols[l->labels[0]].text == 0)
        return NR_OK;
    const value_set *v = &cols[l->labels[0]].values;
    if (v->size > 65536)
        return nr__fail(NR_EFORMAT, "%s: the label column holds %zu distinct values, more than 65536 classes", c->path,
                        v->size);
    size_t most;
    if (!(fl->classes = sorted_values(v, &most)))
        return nr__fail(NR_ENOMEM, "%s: out of memory", c->path);
    fl->n_classes = v->size;
    return NR_OK;
}

/* A file read for a trained model: its columns must be the model's (by name when both have names). */
static nr_status check_columns(const csv_parser *c, const csv_layout *l, const nr__encoding *e)
{
    size_t features = l->cols - l->n_labels, k = 0;
    if (!e)
        return NR_OK;
    if (features != e->n_columns)
        return nr__fail(NR_ESHAPE, "%s: %zu feature columns, the model was trained on %zu", c->path, features,
                        e->n_columns);
    for (size_t j = 0; l->header && j < l->cols; j++) {
        if (l->is_label[j])
            continue;
        const char *want = e->columns[k++].name;
        const field *got = &l->header[j];
        if (want && (strlen(want) != got->len || memcmp(want, got->text, got->len) != 0))
            return nr__fail(NR_ESHAPE, "%s: column %zu is '%.*s', the model's is '%s'", c->path, j + 1,
                            (int)(got->len < 40 ? got->len : 40), got->text, want);
    }
    return NR_OK;
}

/* How to read the rows: from the model, or from what the scan found. */
static nr_status plan_fill(csv_parser *c, const csv_layout *l, const nr_data_options *o, column_scan *cols,
                           filler *fl, nr__encoding **own)
{
    const nr_net *m = o ? o->model : NULL;
    fl->l = l;
    fl->regress = m ? m->n_targets > 0 : o && o->task == NR_TASK_REGRESS;
    if (m) {
        fl->e = m->encoding;
        fl->missing = m->encoding ? m->encoding->missing : NR_MISSING_REFUSE;
        fl->classes = m->class_names;
        fl->n_classes = m->class_names ? m->n_class_names : 0;
        if (!o->unlabeled && l->n_labels != (fl->regress ? m->n_targets : 1))
            return nr__fail(NR_ESHAPE, "%s: %zu label columns, the model predicts %zu", c->path, l->n_labels,
                            fl->regress ? m->n_targets : 1);
        return check_columns(c, l, m->encoding);
    }
    fl->missing = o ? o->missing : NR_MISSING_REFUSE;
    if (fl->missing < NR_MISSING_REFUSE || fl->missing > NR_MISSING_MEAN)
        return nr__fail(NR_EINVAL, "%s: unknown missing-value rule %d", c->path, fl->missing);
    nr_status st = scan_columns(c, l, o, cols);
    if (!st)
        st = class_names(c, l, cols, fl);
    if (!st)
        st = make_encoding(c, l, cols, fl->missing, own);
    fl->e = *own;
    return st;
}

/* The rows as a data set, giving back what the doubling reserved beyond the last row. */
static nr_status make_dataset(filler *fl, nr__encoding **own, bool own_classes, const char *path, nr_dataset **out)
{
    table *t = &fl->t;
    if (t->rows == 0)
        return nr__fail(NR_EFORMAT, "%s: no data rows%s", path, fl->missing == NR_MISSING_DROP ? " (all dropped)" : "");
    nr_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return nr__fail(NR_ENOMEM, "%s: out of memory", path);
    float *v = realloc(t->values, t->rows * t->features * sizeof *v);  /* a failed shrink keeps the larger block */
    int32_t *l = realloc(t->labels, t->rows * sizeof *l);
    d->f32 = v ? v : t->values;
    d->labels = l ? l : t->labels;
    d->targets = t->targets;
    d->n_targets = t->n_targets;
    t->values = t->targets = NULL;
    t->labels = NULL;
    d->n = t->rows;
    d->features = t->features;
    d->shape[0] = d->shape[1] = 1;
    d->shape[2] = t->features;
    nr__data_count_classes(d);
    if (fl->classes) {  /* every class named counts, seen in this file or not */
        d->classes = fl->n_classes;
        d->class_names = own_classes ? fl->classes : nr__copy_strings(fl->classes, fl->n_classes);
        if (own_classes)
            fl->classes = NULL;
    }
    d->encoding = *own;
    *own = NULL;
    *out = d;
    return !fl->classes || d->class_names ? NR_OK : nr__fail(NR_ENOMEM, "%s: out of memory", path);
}

/* Regression: the targets' names, from the header. */
static nr_status target_names(const csv_layout *l, nr_dataset *d)
{
    if (!d->n_targets || !l->header)
        return NR_OK;
    if (!(d->target_names = calloc(d->n_targets, sizeof *d->target_names)))
        return nr__fail(NR_ENOMEM, "out of memory");
    for (size_t i = 0; i < d->n_targets; i++)
        if (!(d->target_names[i] = header_name(l, l->labels[i])))
            return nr__fail(NR_ENOMEM, "out of memory");
    return NR_OK;
}

static nr_status read_table(csv_parser *c, const char *first_p, const nr_data_options *o, size_t len,
                            nr_dataset **out)
{
    csv_layout l = {.first_p = first_p};
    column_scan *cols = NULL;
    nr__encoding *own = NULL;
    filler fl = {0};
    nr_status st = read_layout(c, o, len, &l);
    if (!st && !(cols = calloc(l.cols, sizeof *cols)))
        st = nr__fail(NR_ENOMEM, "%s: out of memory", c->path);
    if (!st)
        st = plan_fill(c, &l, o, cols, &fl, &own);
    if (!st) {
        fl.t.n_targets = fl.regress ? l.n_labels : 0;
        fl.t.features = fl.e ? nr__encoding_width(fl.e) : l.cols - l.n_labels;
        st = for_each_row(c, &l, fill_row, &fl);
    }
    if (!st && !(st = make_dataset(&fl, &own, !(o && o->model), c->path, out)))
        st = target_names(&l, *out);
    for (size_t j = 0; cols && j < l.cols; j++)
        set_free(&cols[j].values);
    if (!(o && o->model))
        nr__free_strings(fl.classes, fl.n_classes);
    free(cols);
    nr__encoding_free(own);
    free(fl.t.values);
    free(fl.t.labels);
    free(fl.t.targets);
    free(l.header);
    free(l.is_label);
    return st;
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
    const char *first_p;
    if (!(st = first_line(&c, &first_p)))
        st = read_table(&c, first_p, options, len, out);
    if (st) {
        nr_data_free(*out);
        *out = NULL;
    }
    free(c.fields);
    free(text);
    return st;
}
