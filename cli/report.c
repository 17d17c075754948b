/* report.c - the training report (report.h): one HTML file with inline SVG, readable offline and in any
 * browser, written whole or not at all. Images (mistakes, weights) are inline BMP data: no encoder needed. */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the epochs ---- */

bool report_add_epoch(report_epochs *e, const report_epoch *epoch)
{
    if (e->count == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        report_epoch *grown = realloc(e->at, cap * sizeof *grown);
        if (!grown)
            return false;
        e->at = grown;
        e->cap = cap;
    }
    e->at[e->count++] = *epoch;
    return true;
}

void report_epochs_free(report_epochs *e)
{
    free(e->at);
    *e = (report_epochs){0};
}

int report_read_log(const char *cmd, const char *path, report_epochs *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_error(cmd, EXIT_WORK, "%s: cannot open", path);
    char line[512];
    int rc = fgets(line, sizeof line, f) && strncmp(line, "epoch,train_loss", 16) == 0
                 ? 0 : cli_error(cmd, EXIT_WORK, "%s: not a log written by neurite train --log", path);
    for (size_t n = 2; !rc && fgets(line, sizeof line, f); n++) {
        report_epoch r;
        unsigned long epoch;
        if (sscanf(line, "%lu,%lf,%lf,%lf,%lf,%lf", &epoch, &r.loss, &r.accuracy, &r.val_loss, &r.val_accuracy,
                   &r.lr) != 6)
            rc = cli_error(cmd, EXIT_WORK, "%s: line %zu is not an epoch's row", path, n);
        else if (!report_add_epoch(e, &r))
            rc = cli_error(cmd, EXIT_WORK, "out of memory");
    }
    fclose(f);
    return rc;
}

/* ---- small pieces of HTML and SVG ---- */

static void put_escaped(FILE *f, const char *s)
{
    for (; s && *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
}

static const char *const colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"};

/* A line chart of up to 4 series over the epochs (NaN points are left out). */
typedef struct series {
    const char *name;
    double (*value)(const report_epoch *e);
} series;

static double get_loss(const report_epoch *e) { return e->loss; }
static double get_val_loss(const report_epoch *e) { return e->val_loss; }
static double get_acc(const report_epoch *e) { return 100 * e->accuracy; }
static double get_val_acc(const report_epoch *e) { return 100 * e->val_accuracy; }
static double get_lr(const report_epoch *e) { return e->lr; }

enum { CW = 560, CH = 260, ML = 64, MR = 16, MT = 28, MB = 36 };

static void chart_axes(FILE *f, const char *title, double lo, double hi, size_t n)
{
    fprintf(f, "<svg class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", CW, CH, CW, CH);
    fprintf(f, "<text x=\"%d\" y=\"18\" class=\"title\">", ML);
    put_escaped(f, title);
    fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", ML, MT,
            CW - ML - MR, CH - MT - MB);
    for (int i = 0; i <= 4; i++) {
        double v = lo + (hi - lo) * i / 4, y = CH - MB - (double)(CH - MT - MB) * i / 4;
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/><text x=\"%d\" y=\"%.1f\" "
                   "class=\"tick\" text-anchor=\"end\">%.3g</text>\n", ML, CW - MR, y, y, ML - 6, y + 4, v);
    }
    size_t step = n > 10 ? (n + 9) / 10 : 1;
    for (size_t e = 1; e <= n; e += step)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%zu</text>\n",
                ML + (n > 1 ? (double)(e - 1) / (double)(n - 1) : 0.5) * (CW - ML - MR), CH - MB + 16, e);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">epoch</text>\n", (CW + ML) / 2,
            CH - 6);
}

static void line_chart(FILE *f, const char *title, const report_epochs *ep, const series *s, int count)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < count; k++)
        for (size_t i = 0; i < ep->count; i++) {
            double v = s[k].value(&ep->at[i]);
            lo = isfinite(v) && v < lo ? v : lo;
            hi = isfinite(v) && v > hi ? v : hi;
        }
    if (!isfinite(lo))
        return;
    if (hi - lo < 1e-12)
        hi = lo + 1;
    chart_axes(f, title, lo, hi, ep->count);
    for (int k = 0; k < count; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colours[k]);
        for (size_t i = 0; i < ep->count; i++) {
            double v = s[k].value(&ep->at[i]);
            if (isfinite(v))
                fprintf(f, "%.1f,%.1f ", ML + (ep->count > 1 ? (double)i / (double)(ep->count - 1) : 0.5) *
                                                  (CW - ML - MR), CH - MB - (v - lo) / (hi - lo) * (CH - MT - MB));
        }
        fprintf(f, "\"/><text x=\"%d\" y=\"%d\" fill=\"%s\" class=\"tick\">%s</text>\n", CW - MR - 150 + 75 * k,
                18, colours[k], s[k].name);
    }
    fprintf(f, "</svg>\n");
}

/* ---- images, as inline BMP ---- */

static void put_base64(FILE *f, const unsigned char *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < len ? (unsigned)data[i + 1] << 8 : 0) |
                     (i + 2 < len ? data[i + 2] : 0);
        fputc(abc[v >> 18 & 63], f);
        fputc(abc[v >> 12 & 63], f);
        fputc(i + 1 < len ? abc[v >> 6 & 63] : '=', f);
        fputc(i + 2 < len ? abc[v & 63] : '=', f);
    }
}

/* An <image> of h x w pixels (c channels, values 0..255) drawn at (x, y) scaled to size x size. */
static void put_picture(FILE *f, const float *px, size_t h, size_t w, size_t c, double x, double y, double size)
{
    size_t row = (w * 3 + 3) / 4 * 4, len = 54 + row * h;
    unsigned char *bmp = calloc(1, len);
    if (!bmp)
        return;
    unsigned char head[54] = {'B', 'M'};
    uint32_t fields[] = {(uint32_t)len, 0, 54, 40, (uint32_t)w, (uint32_t)h};
    for (int i = 0; i < 6; i++)
        for (int b = 0; b < 4; b++)
            head[2 + 4 * i + b] = (unsigned char)(fields[i] >> (8 * b));
    head[26] = 1;   /* planes */
    head[28] = 24;  /* bits per pixel */
    memcpy(bmp, head, 54);
    for (size_t yy = 0; yy < h; yy++)  /* BMP rows go bottom-up, pixels blue-green-red */
        for (size_t xx = 0; xx < w; xx++)
            for (int k = 0; k < 3; k++) {
                float v = px[(yy * w + xx) * c + (c == 3 ? (size_t)(2 - k) : 0)];
                bmp[54 + (h - 1 - yy) * row + xx * 3 + (size_t)k] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    fprintf(f, "<image x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" style=\"image-rendering:pixelated\" "
               "href=\"data:image/bmp;base64,", x, y, size, size);
    put_base64(f, bmp, len);
    fprintf(f, "\"/>\n");
    free(bmp);
}

/* ---- classes ---- */

/* The confusion matrix as a heat map: darker is more, each row (true class) scaled by its own count. */
static void confusion_map(FILE *f, const nr_net *net, const nr_eval *ev)
{
    size_t k = ev->classes, cell = k <= 10 ? 36 : k <= 30 ? 16 : 6, side = 110 + k * cell;
    char buf[32];
    fprintf(f, "<svg class=\"chart\" width=\"%zu\" height=\"%zu\">\n", side, side);
    for (size_t t = 0; t < k; t++) {
        size_t total = 0;
        for (size_t p = 0; p < k; p++)
            total += ev->confusion[t * k + p];
        for (size_t p = 0; p < k; p++) {
            size_t n = ev->confusion[t * k + p];
            double share = total ? (double)n / (double)total : 0;
            fprintf(f, "<rect x=\"%zu\" y=\"%zu\" width=\"%zu\" height=\"%zu\" fill=\"rgb(%d,%d,%d)\"><title>true ",
                    100 + p * cell, 30 + t * cell, cell, cell, (int)(255 - 225 * share), (int)(255 - 170 * share),
                    (int)(255 - 60 * share));
            put_escaped(f, cli_class_name(net, t, buf, sizeof buf));
            fprintf(f, ", predicted ");
            put_escaped(f, cli_class_name(net, p, buf, sizeof buf));
            fprintf(f, ": %zu</title></rect>\n", n);
            if (cell >= 30 && n)
                fprintf(f, "<text x=\"%zu\" y=\"%zu\" class=\"tick\" text-anchor=\"middle\" fill=\"%s\">%zu</text>\n",
                        100 + p * cell + cell / 2, 30 + t * cell + cell / 2 + 4, share > 0.5 ? "#fff" : "#000", n);
        }
        fprintf(f, "<text x=\"96\" y=\"%zu\" class=\"tick\" text-anchor=\"end\">", 30 + t * cell + cell / 2 + 4);
        put_escaped(f, cli_class_name(net, t, buf, sizeof buf));
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<text x=\"100\" y=\"20\" class=\"tick\">predicted class &#8594; (rows: true class)</text>\n</svg>\n");
}

/* Each class's precision and recall as a pair of bars. */
static void class_bars(FILE *f, const nr_net *net, const nr_eval *ev)
{
    size_t k = ev->classes, width = 140 + 260 + 120;
    char buf[32];
    fprintf(f, "<svg class=\"chart\" width=\"%zu\" height=\"%zu\">\n", width, 40 + k * 22);
    fprintf(f, "<text x=\"140\" y=\"16\" class=\"tick\" fill=\"%s\">precision</text><text x=\"220\" y=\"16\" "
               "class=\"tick\" fill=\"%s\">recall</text>\n", colours[0], colours[1]);
    for (size_t c = 0; c < k; c++) {
        size_t tp = ev->confusion[c * k + c], truth = 0, predicted = 0;
        for (size_t j = 0; j < k; j++) {
            truth += ev->confusion[c * k + j];
            predicted += ev->confusion[j * k + c];
        }
        double p = predicted ? (double)tp / (double)predicted : 0, r = truth ? (double)tp / (double)truth : 0;
        double y = 28 + (double)c * 22;
        fprintf(f, "<text x=\"132\" y=\"%.0f\" class=\"tick\" text-anchor=\"end\">", y + 14);
        put_escaped(f, cli_class_name(net, c, buf, sizeof buf));
        fprintf(f, "</text><rect x=\"140\" y=\"%.0f\" width=\"%.1f\" height=\"8\" fill=\"%s\"/>"
                   "<rect x=\"140\" y=\"%.0f\" width=\"%.1f\" height=\"8\" fill=\"%s\"/>"
                   "<text x=\"%.1f\" y=\"%.0f\" class=\"tick\">%.3f / %.3f</text>\n",
                y + 2, 260 * p, colours[0], y + 11, 260 * r, colours[1], 146 + 260 * fmax(p, r), y + 14, p, r);
    }
    fprintf(f, "</svg>\n");
}

/* The model's outputs (probabilities, or a regression's values) for every sample; NULL if it fails. */
static float *predict_all(nr_net *net, const nr_dataset *d)
{
    enum { CHUNK = 256 };
    size_t n = nr_data_count(d), in = nr_data_features(d), k = nr_net_output_size(net);
    float *out = malloc(n * k * sizeof *out), *x = malloc(CHUNK * in * sizeof *x);
    for (size_t i = 0; out && x && i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        for (size_t j = 0; j < m; j++)
            nr_data_sample(d, i + j, x + j * in);
        if (nr_net_predict(net, x, m, out + i * k) != NR_OK) {
            free(out);
            out = NULL;
        }
    }
    free(x);
    return out;
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        best = v[i] > v[best] ? i : best;
    return best;
}

/* Up to 40 of the samples the model got wrong, as pictures with their true and predicted classes. */
static void mistakes(FILE *f, const nr_net *net, const nr_dataset *d, const float *probs)
{
    size_t n = nr_data_count(d), k = nr_net_output_size(net), shape[3], shown = 0, per_row = 8;
    nr_data_shape(d, shape);
    float *px = malloc(nr_data_features(d) * sizeof *px);
    const int32_t *labels = nr_data_labels(d);
    char a[32], b[32];
    fprintf(f, "<svg class=\"chart\" width=\"%zu\" height=\"%zu\">\n", per_row * 96, (size_t)5 * 110);
    for (size_t i = 0; px && i < n && shown < 40; i++) {
        size_t guess = argmax(probs + i * k, k);
        if (guess == (size_t)labels[i])
            continue;
        double x = (double)(shown % per_row) * 96, y = (double)(shown / per_row) * 110;
        nr_data_sample(d, i, px);
        put_picture(f, px, shape[0], shape[1], shape[2], x + 8, y + 4, 80);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"tick\">", x + 8, y + 100);
        put_escaped(f, cli_class_name(net, (size_t)labels[i], a, sizeof a));
        fprintf(f, " &#8594; ");
        put_escaped(f, cli_class_name(net, guess, b, sizeof b));
        fprintf(f, "</text>\n");
        shown++;
    }
    fprintf(f, "</svg>\n<p>%zu shown (true class &#8594; predicted), of the %s</p>\n", shown,
            shown < 40 ? "mistakes there were" : "first mistakes");
    free(px);
}

/* ---- regression ---- */

/* Predicted against true values of target j (with the diagonal), or residuals against predictions. */
static void scatter(FILE *f, const nr_net *net, const nr_dataset *d, const float *pred, size_t j, bool residuals)
{
    size_t n = nr_data_count(d), t = nr_net_output_size(net), step = n > 2000 ? n / 2000 : 1;
    const float *truth = nr_data_targets(d);
    double lo = INFINITY, hi = -INFINITY, rlo = INFINITY, rhi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double a = truth[i * t + j], b = pred[i * t + j];
        lo = fmin(lo, fmin(a, b));
        hi = fmax(hi, fmax(a, b));
        rlo = fmin(rlo, b - a);
        rhi = fmax(rhi, b - a);
    }
    double ylo = residuals ? rlo : lo, yhi = residuals ? rhi : hi;
    hi = hi - lo < 1e-12 ? lo + 1 : hi;
    yhi = yhi - ylo < 1e-12 ? ylo + 1 : yhi;
    const char *name = nr_net_target_name(net, j) ? nr_net_target_name(net, j) : "target";
    char title[160];
    snprintf(title, sizeof title, residuals ? "%s: residual (predicted - true) against predicted"
                                            : "%s: predicted (up) against true (across)", name);
    fprintf(f, "<svg class=\"chart\" width=\"%d\" height=\"%d\">\n<text x=\"%d\" y=\"18\" class=\"title\">", CW, CH,
            ML);
    put_escaped(f, title);
    fprintf(f, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", ML, MT,
            CW - ML - MR, CH - MT - MB);
    double sx = (CW - ML - MR) / (hi - lo), sy = (CH - MT - MB) / (yhi - ylo);
    double zero = residuals ? 0 : lo;
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\" stroke=\"#999\"/>\n", ML,
            CH - MB - (zero - ylo) * sy, CW - MR, CH - MB - ((residuals ? 0 : hi) - ylo) * sy);
    for (size_t i = 0; i < n; i += step) {
        double a = truth[i * t + j], b = pred[i * t + j], x = residuals ? b : a, y = residuals ? b - a : b;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\" fill-opacity=\"0.5\"/>\n",
                ML + (x - lo) * sx, CH - MB - (y - ylo) * sy, colours[0]);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"tick\">%.4g</text><text x=\"%d\" y=\"%d\" class=\"tick\" "
               "text-anchor=\"end\">%.4g</text>\n", ML, CH - MB + 16, lo, CW - MR, CH - MB + 16, hi);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%.4g</text><text x=\"%d\" y=\"%d\" "
               "class=\"tick\" text-anchor=\"end\">%.4g</text></svg>\n", ML - 6, CH - MB, ylo, ML - 6, MT + 8, yhi);
}

/* ---- the first layer's weights ---- */

/* Each unit's (or filter's) weights as a picture: grey is 0, lighter positive, darker negative, all on one
 * scale. Only for a first dense layer over an image, or a first convolution. */
static void first_weights(FILE *f, const nr_net *net)
{
    size_t shape[3];
    nr_net_input_shape(net, shape);
    nr_tensor_info w;
    bool dense = nr_net_find_tensor(net, "dense0.w", &w) == NR_OK && shape[0] > 1;
    bool conv = !dense && nr_net_find_tensor(net, "conv2d0.w", &w) == NR_OK;
    if (!dense && !conv)
        return;
    const float *v = nr_net_params((nr_net *)net) + w.offset;
    size_t units = dense ? w.shape[1] : w.shape[3], h = dense ? shape[0] : w.shape[0];
    size_t wd = dense ? shape[1] : w.shape[1], c = dense ? shape[2] : w.shape[2], shown = units < 64 ? units : 64;
    double top = 1e-12;
    for (size_t i = 0; i < w.size; i++)
        top = fmax(top, fabs(v[i]));
    float *px = malloc(h * wd * sizeof *px);
    fprintf(f, "<h2>The first layer's weights</h2>\n<p>%s %zu of %zu; grey is 0, light positive, dark "
               "negative.</p>\n<svg class=\"chart\" width=\"%d\" height=\"%zu\">\n", dense ? "units" : "filters",
            shown, units, 8 * 72, (shown + 7) / 8 * 72);
    for (size_t u = 0; px && u < shown; u++) {
        for (size_t i = 0; i < h * wd; i++) {
            double sum = 0;  /* the channels' mean; the weight of input i for unit u is v[i * units + u] */
            for (size_t k = 0; k < c; k++)
                sum += v[(i * c + k) * units + u];
            px[i] = (float)(127.5 + 127.5 * sum / (double)c / top);
        }
        put_picture(f, px, h, wd, 1, (double)(u % 8) * 72 + 4, (double)(u / 8) * 72 + 4, 64);
    }
    fprintf(f, "</svg>\n");
    free(px);
}

/* ---- the page ---- */

static void put_head(FILE *f, const report_input *in)
{
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    put_escaped(f, in->title);
    fprintf(f, "</title>\n<style>body{font:14px sans-serif;margin:24px;color:#222;max-width:1200px}"
               "h1{font-size:20px}h2{font-size:16px;margin-top:28px}pre{background:#f6f6f6;padding:8px;"
               "overflow-x:auto}.chart{margin:4px 12px 4px 0;vertical-align:top}.title{font-weight:bold;"
               "font-size:13px}.tick{font-size:11px}.frame{fill:none;stroke:#888}.grid{stroke:#eee}</style>"
               "</head><body>\n<h1>");
    put_escaped(f, in->title);
    fprintf(f, "</h1>\n");
}

static void put_model(FILE *f, const report_input *in)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m) {
        nr_net_print_summary(in->net, m);
        fclose(m);
    }
    fprintf(f, "<h2>The model</h2>\n<pre>");
    put_escaped(f, text);
    fprintf(f, "</pre>\n");
    free(text);
    if (in->options) {
        fprintf(f, "<h2>The run's options</h2>\n<pre>");
        put_escaped(f, in->options);
        fprintf(f, "</pre>\n");
    }
}

static void put_curves(FILE *f, const report_epochs *ep)
{
    if (!ep || ep->count == 0)
        return;
    fprintf(f, "<h2>Training</h2>\n");
    const series loss[] = {{"train", get_loss}, {"validation", get_val_loss}};
    const series acc[] = {{"train", get_acc}, {"validation", get_val_acc}};
    const series lr[] = {{"learning rate", get_lr}};
    line_chart(f, "loss", ep, loss, 2);
    line_chart(f, "accuracy (%)", ep, acc, 2);
    line_chart(f, "learning rate", ep, lr, 1);
}

/* What the model does on the data: classes (accuracy, matrix, bars, mistakes) or a regression's values. */
static int put_results(FILE *f, const report_input *in)
{
    nr_eval ev;
    if (!in->data || nr_evaluate(in->net, in->data, &ev) != NR_OK)
        return in->data ? -1 : 0;
    float *pred = predict_all(in->net, in->data);
    fprintf(f, "<h2>On ");
    put_escaped(f, in->data_name);
    if (ev.targets) {
        fprintf(f, " (%zu samples)</h2>\n<table><tr><th>target</th><th>MAE</th><th>RMSE</th><th>R&#178;</th></tr>",
                ev.count);
        for (size_t j = 0; j < ev.targets; j++)
            fprintf(f, "<tr><td>%s</td><td>%.5g</td><td>%.5g</td><td>%.4f</td></tr>",
                    nr_net_target_name(in->net, j) ? nr_net_target_name(in->net, j) : "?", ev.mae[j], ev.rmse[j],
                    ev.r2[j]);
        fprintf(f, "</table>\n");
        for (size_t j = 0; pred && j < ev.targets && j < 4; j++) {
            scatter(f, in->net, in->data, pred, j, false);
            scatter(f, in->net, in->data, pred, j, true);
        }
    } else {
        fprintf(f, ": accuracy %.2f%% of %zu samples</h2>\n", 100 * ev.accuracy, ev.count);
        confusion_map(f, in->net, &ev);
        class_bars(f, in->net, &ev);
        if (pred && nr_data_is_image(in->data)) {
            fprintf(f, "<h2>What it got wrong</h2>\n");
            mistakes(f, in->net, in->data, pred);
        }
    }
    free(pred);
    nr_eval_free(&ev);
    return 0;
}

typedef struct report_job {
    const report_input *in;
    int rc;
} report_job;

static bool write_page(FILE *f, void *ctx)
{
    report_job *j = ctx;
    put_head(f, j->in);
    put_curves(f, j->in->epochs);
    if ((j->rc = put_results(f, j->in)))
        return false;
    first_weights(f, j->in->net);
    put_model(f, j->in);
    fprintf(f, "<p>Written by neurite %s.</p>\n</body></html>\n", NR_VERSION_STRING);
    return true;
}

int report_write(const char *cmd, const char *path, const report_input *in)
{
    report_job job = {in, 0};
    int rc = cli_write_file(cmd, path, write_page, &job);
    if (job.rc)
        return cli_fail(cmd, NR_EINVAL);  /* the evaluation's own message */
    return rc;
}
