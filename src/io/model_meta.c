/* model_meta.c - the sections of a model file that say what the network knows of its data (docs/format.md):
 *   ENCD  how a table's columns become inputs (names, text values, the missing-value rule and fill values);
 *         required: without it a file of text could not be read as the network was trained
 *   TRGT  regression: the targets' names, means and scales; required: predictions are in the targets' units
 *   clas  the class names; optional: without them classes are numbers, and predictions are the same
 * Every count is checked against the bytes the section holds before anything is allocated. */
#include "io/model.h"

#include <math.h>
#include <stdlib.h>

enum { NO_NAME = 0xffffffffu, MAX_NAME = 4096 };

static void put_string(nr__sink *s, const char *text)
{
    if (!text) {
        nr__put_u32(s, NO_NAME);
        return;
    }
    size_t len = strlen(text);
    nr__put_u32(s, (uint32_t)len);
    nr__put(s, text, len);
}

/* A string of at most MAX_NAME bytes (no zero byte in it), or NULL for an absent name; false on failure. */
static bool get_string(nr__reader *r, char **out)
{
    uint32_t len;
    *out = NULL;
    if (!nr__get_u32(r, &len))
        return false;
    if (len == NO_NAME)
        return true;
    if (len > MAX_NAME || (size_t)(r->end - r->p) < len)
        return nr__reader_fail(r, "a name of %u bytes", len);
    if (memchr(r->p, 0, len))
        return nr__reader_fail(r, "a name holds a zero byte");
    if (!(*out = malloc(len + 1))) {
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    memcpy(*out, r->p, len);
    (*out)[len] = 0;
    r->p += len;
    return true;
}

static void put_encoding(nr__sink *s, const void *ctx)
{
    const nr__encoding *e = ((const nr_net *)ctx)->encoding;
    nr__put_u32(s, (uint32_t)e->missing);
    nr__put_u64(s, e->n_columns);
    for (size_t i = 0; i < e->n_columns; i++) {
        const nr__column *c = &e->columns[i];
        put_string(s, c->name);
        nr__put_u32(s, (uint32_t)(c->categories ? c->n_categories : 0));
        for (size_t k = 0; c->categories && k < c->n_categories; k++)
            put_string(s, c->categories[k]);
        nr__put_f32(s, c->fill);
    }
}

static void put_targets(nr__sink *s, const void *ctx)
{
    const nr_net *net = ctx;
    nr__put_u64(s, net->n_targets);
    for (size_t i = 0; i < net->n_targets; i++) {
        put_string(s, net->target_names ? net->target_names[i] : NULL);
        nr__put_f32(s, net->target_mean[i]);
        nr__put_f32(s, net->target_scale[i]);
    }
}

static void put_classes(nr__sink *s, const void *ctx)
{
    const nr_net *net = ctx;
    nr__put_u64(s, net->n_class_names);
    for (size_t i = 0; i < net->n_class_names; i++)
        put_string(s, net->class_names[i]);
}

void nr__put_data_sections(nr__sink *s, const nr_net *net)
{
    if (net->encoding)
        nr__put_section(s, "ENCD", put_encoding, net);
    if (net->n_targets)
        nr__put_section(s, "TRGT", put_targets, net);
    if (net->class_names)
        nr__put_section(s, "clas", put_classes, net);
}

/* One column of ENCD; its categories sorted and distinct, as the reader looks them up. */
static bool read_column(nr__reader *r, nr__column *c)
{
    uint32_t n;
    if (!get_string(r, &c->name) || !nr__get_u32(r, &n))
        return false;
    if (n > (size_t)(r->end - r->p) / 4)
        return nr__reader_fail(r, "%u text values cannot fit in the section", n);
    if (n && !(c->categories = calloc(n, sizeof *c->categories))) {
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    for (uint32_t k = 0; k < n; k++) {
        if (!get_string(r, &c->categories[k]))
            return false;
        c->n_categories++;  /* counted at once, so that a value refused below is freed with the rest */
        if (!c->categories[k] || (k && strcmp(c->categories[k - 1], c->categories[k]) >= 0))
            return nr__reader_fail(r, "the text values of a column are not sorted and distinct");
    }
    return nr__get_f32(r, &c->fill) && (isfinite(c->fill) || nr__reader_fail(r, "a fill value is not finite")) &&
           (!n || (c->fill >= 0 && c->fill < (float)n) || nr__reader_fail(r, "a fill value is not a text value"));
}

static bool read_encoding(nr__reader *r, nr_net *net)
{
    uint32_t missing;
    uint64_t n;
    if (!nr__get_u32(r, &missing) || !nr__get_u64(r, &n))
        return false;
    if (missing > NR_MISSING_MEAN || n == 0 || n > (uint64_t)(r->end - r->p) / 8)
        return nr__reader_fail(r, "%llu columns with rule %u", (unsigned long long)n, missing);
    nr__encoding *e = calloc(1, sizeof *e);
    if (!e || !(e->columns = calloc(n, sizeof *e->columns))) {
        free(e);
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    nr__encoding_free(net->encoding);
    net->encoding = e;
    e->missing = (int)missing;
    for (; e->n_columns < n; e->n_columns++)
        if (!read_column(r, &e->columns[e->n_columns])) {
            e->n_columns++;  /* so that what the column read is freed with the rest */
            return false;
        }
    if (nr__encoding_width(e) != net->in_size)
        return nr__reader_fail(r, "the columns make %zu inputs, the network takes %zu", nr__encoding_width(e),
                               net->in_size);
    return true;
}

static bool read_targets(nr__reader *r, nr_net *net)
{
    uint64_t n;
    if (!nr__get_u64(r, &n))
        return false;
    if (n == 0 || n != nr_net_output_size(net))
        return nr__reader_fail(r, "%llu targets, the network has %zu outputs", (unsigned long long)n,
                               nr_net_output_size(net));
    if (!(net->target_names = calloc(n, sizeof *net->target_names)) || !(net->target_mean = calloc(n, sizeof(float))) ||
        !(net->target_scale = calloc(n, sizeof(float)))) {
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    net->n_targets = n;
    for (size_t i = 0; i < n; i++) {
        float *m = &net->target_mean[i], *s = &net->target_scale[i];
        if (!get_string(r, &net->target_names[i]) || !nr__get_f32(r, m) || !nr__get_f32(r, s))
            return false;
        if (!isfinite(*m) || !isfinite(*s) || *s == 0.0f)
            return nr__reader_fail(r, "target %zu: mean %g, scale %g", i, (double)*m, (double)*s);
    }
    return true;
}

static bool read_classes(nr__reader *r, nr_net *net)
{
    uint64_t n;
    if (!nr__get_u64(r, &n))
        return false;
    if (n == 0 || n > nr_net_output_size(net) || n > (uint64_t)(r->end - r->p) / 4)
        return nr__reader_fail(r, "%llu class names for %zu outputs", (unsigned long long)n, nr_net_output_size(net));
    if (!(net->class_names = calloc(n, sizeof *net->class_names))) {
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    for (; net->n_class_names < n; net->n_class_names++)
        if (!get_string(r, &net->class_names[net->n_class_names]))
            return false;
    return true;
}

int nr__read_data_section(nr__reader *r, const char tag[4], nr_net *net)
{
    static const char *const tags[] = {"ENCD", "TRGT", "clas"};
    bool (*const readers[])(nr__reader *, nr_net *) = {read_encoding, read_targets, read_classes};
    for (int i = 0; i < 3; i++) {
        if (memcmp(tag, tags[i], 4) != 0)
            continue;
        bool seen = i == 0 ? net->encoding != NULL : i == 1 ? net->n_targets > 0 : net->class_names != NULL;
        if (seen) {
            nr__reader_fail(r, "appears twice");
            return 1;
        }
        if (readers[i](r, net) && r->p != r->end)
            nr__reader_fail(r, "%td unexpected bytes at its end", r->end - r->p);
        return 1;
    }
    return 0;
}
