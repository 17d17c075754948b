/* encoding.c - names and column encodings that travel from a data file into the network: class names, target
 * names, and how a table's text columns became one-hot inputs. */
#include "data/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void nr__free_strings(char **strings, size_t count)
{
    for (size_t i = 0; strings && i < count; i++)
        free(strings[i]);
    free(strings);
}

char **nr__copy_strings(char *const *strings, size_t count)
{
    if (!strings)
        return NULL;
    char **copy = calloc(count ? count : 1, sizeof *copy);
    for (size_t i = 0; copy && i < count; i++)
        if (strings[i] && !(copy[i] = strdup(strings[i]))) {
            nr__free_strings(copy, i);
            copy = NULL;
        }
    if (!copy)
        nr__fail(NR_ENOMEM, "out of memory for names");
    return copy;
}

void nr__encoding_free(nr__encoding *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_columns; i++) {
        free(e->columns[i].name);
        nr__free_strings(e->columns[i].categories, e->columns[i].n_categories);
    }
    free(e->columns);
    free(e);
}

nr__encoding *nr__encoding_copy(const nr__encoding *e)
{
    if (!e)
        return NULL;
    nr__encoding *c = calloc(1, sizeof *c);
    if (!c || !(c->columns = calloc(e->n_columns ? e->n_columns : 1, sizeof *c->columns))) {
        free(c);
        return nr__fail(NR_ENOMEM, "out of memory"), NULL;
    }
    c->missing = e->missing;
    for (size_t i = 0; i < e->n_columns; i++, c->n_columns++) {
        const nr__column *from = &e->columns[i];
        nr__column *to = &c->columns[i];
        to->fill = from->fill;
        to->n_categories = from->n_categories;
        bool ok = (!from->name || (to->name = strdup(from->name))) &&
                  (!from->categories || (to->categories = nr__copy_strings(from->categories, from->n_categories)));
        if (!ok) {
            c->n_columns++;
            nr__encoding_free(c);
            return nr__fail(NR_ENOMEM, "out of memory"), NULL;
        }
    }
    return c;
}

size_t nr__encoding_width(const nr__encoding *e)
{
    size_t width = 0;
    for (size_t i = 0; e && i < e->n_columns; i++)
        width += e->columns[i].categories ? e->columns[i].n_categories : 1;
    return width;
}

long nr__category_index(const nr__column *c, const char *text, size_t len)
{
    size_t lo = 0, hi = c->n_categories;
    while (lo < hi) {  /* binary search: the categories are sorted by strcmp */
        size_t mid = lo + (hi - lo) / 2;
        const char *s = c->categories[mid];
        int cmp = strncmp(s, text, len);
        if (cmp == 0)
            cmp = s[len] ? 1 : 0;
        if (cmp == 0)
            return (long)mid;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ---- what a network keeps of its data ---- */

/* The targets' means and inverse deviations (1 for a constant target), from the training set. */
static bool fit_targets(const nr_dataset *d, float *mean, float *scale)
{
    size_t t = d->n_targets;
    for (size_t k = 0; k < t; k++) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < d->n; i++)
            sum += d->targets[i * t + k];
        double m = sum / (double)d->n;
        for (size_t i = 0; i < d->n; i++)
            sq += (d->targets[i * t + k] - m) * (d->targets[i * t + k] - m);
        double sd = sqrt(sq / (double)d->n);
        mean[k] = (float)m;
        scale[k] = sd > 1e-12 && isfinite((float)(1.0 / sd)) ? (float)(1.0 / sd) : 1.0f;
    }
    return true;
}

nr_status nr__net_adopt_data(nr_net *net, const nr_dataset *d)
{
    size_t t = d->n_targets;
    nr__encoding *enc = d->encoding ? nr__encoding_copy(d->encoding) : NULL;
    char **classes = d->class_names ? nr__copy_strings(d->class_names, d->classes) : NULL;
    char **targets = d->target_names ? nr__copy_strings(d->target_names, t) : NULL;
    float *mean = t ? malloc(t * sizeof *mean) : NULL, *scale = t ? malloc(t * sizeof *scale) : NULL;
    if ((d->encoding && !enc) || (d->class_names && !classes) || (d->target_names && !targets) ||
        (t && (!mean || !scale))) {
        nr__encoding_free(enc);
        nr__free_strings(classes, d->classes);
        nr__free_strings(targets, t);
        free(mean);
        free(scale);
        return nr__fail(NR_ENOMEM, "out of memory for what the network keeps of its data");
    }
    if (t)
        fit_targets(d, mean, scale);
    nr__encoding_free(net->encoding);
    nr__free_strings(net->class_names, net->n_class_names);
    nr__free_strings(net->target_names, net->n_targets);
    free(net->target_mean);
    free(net->target_scale);
    net->encoding = enc;
    net->class_names = classes;
    net->n_class_names = classes ? d->classes : 0;
    net->n_targets = t;
    net->target_names = targets;
    net->target_mean = mean;
    net->target_scale = scale;
    return NR_OK;
}

nr_task nr_net_task(const nr_net *net) { return net && net->n_targets ? NR_TASK_REGRESS : NR_TASK_CLASSIFY; }
size_t nr_net_target_count(const nr_net *net) { return net ? net->n_targets : 0; }

const char *nr_net_class_name(const nr_net *net, size_t i)
{
    return net && net->class_names && i < net->n_class_names ? net->class_names[i] : NULL;
}

const char *nr_net_target_name(const nr_net *net, size_t i)
{
    return net && net->target_names && i < net->n_targets ? net->target_names[i] : NULL;
}

void nr_net_describe_inputs(const nr_net *net, char *buf, size_t cap)
{
    const nr__encoding *e = net ? net->encoding : NULL;
    static const char *rules[] = {"refused", "rows dropped", "filled with the training mean"};
    size_t n = 0;
    if (!buf || !cap)
        return;
    buf[0] = 0;
    if (!e)
        return;
    n += (size_t)snprintf(buf, cap, "%zu columns (missing values %s):", e->n_columns,
                          rules[e->missing >= 0 && e->missing <= 2 ? e->missing : 0]);
    for (size_t i = 0; i < e->n_columns && n < cap; i++) {
        const nr__column *c = &e->columns[i];
        n += (size_t)snprintf(buf + n, cap - n, "%s %s (", i ? "," : "", c->name ? c->name : "?");
        if (!c->categories)
            n += n < cap ? (size_t)snprintf(buf + n, cap - n, "number)") : 0;
        for (size_t k = 0; c->categories && k < c->n_categories && n < cap; k++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", c->categories[k], k + 1 < c->n_categories ? " " : ")");
    }
}
