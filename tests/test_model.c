/* test_model.c - model files: save -> load -> predict gives bit-identical outputs; every kind of damage is
 * refused with a message and no crash; saving never leaves a half-written file. */
#include "../src/core/internal.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/neurite-model-XXXXXX";

static const char *path(const char *name)
{
    static char buf[2][256];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", dir, name);
    return buf[which];
}

static unsigned char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(*len + 64);
    if (fread(d, 1, *len, f) != *len)
        *len = 0;
    fclose(f);
    return d;
}

static void spit(const char *p, const unsigned char *d, size_t len)
{
    FILE *f = fopen(p, "wb");
    fwrite(d, 1, len, f);
    fclose(f);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the length field and the checksum so a crafted change reaches the parser. */
static void reseal(unsigned char *d, size_t len)
{
    for (int i = 0; i < 8; i++)
        d[16 + i] = (unsigned char)((uint64_t)len >> (8 * i));
    put32(d + len - 4, nr__crc32(0, d, len - 4));
}

static void refused(const char *name, const char *needle)
{
    nr_net *net = (nr_net *)1;
    nr_status st = nr_model_load(path(name), &net);
    CHECK(st != NR_OK && net == NULL, "%s: damaged model loaded", name);
    CHECK(strstr(nr_error_message(), needle) != NULL, "%s: message '%s' lacks '%s'", name, nr_error_message(),
          needle);
}

static nr_net *small_net(void)
{
    nr_net *net = nr_net_new(6);
    nr_net_add_spec(net, "12-tanh-8-leaky0.05-4", NR_ACT_RELU);
    nr_rng r;
    nr_rng_seed(&r, 2);
    nr_net_init(net, NR_INIT_HE_NORMAL, &r);
    nr_net_set_head(net, NR_LOSS_XENT);
    float x[30];
    int32_t y[5];
    for (int i = 0; i < 30; i++)
        x[i] = (float)nr_rng_normal(&r) * 3 + 1;
    for (int i = 0; i < 5; i++)
        y[i] = i % 4;
    nr_dataset *d;
    nr_data_from_arrays(x, y, 5, 6, &d);
    nr_net_fit_scaling(net, d, NR_SCALE_STANDARD);
    nr_data_free(d);
    return net;
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    /* Round trip: the loaded model predicts exactly what the saved one did. */
    nr_net *net = small_net();
    float x[6 * 9], p1[4 * 9], p2[4 * 9];
    nr_rng r;
    nr_rng_seed(&r, 8);
    for (int i = 0; i < 54; i++)
        x[i] = (float)nr_rng_normal(&r);
    CHECK_OK(nr_net_predict(net, x, 9, p1));
    CHECK_OK(nr_model_save(net, path("m.nrm")));
    nr_net *back = NULL;
    CHECK_OK(nr_model_load(path("m.nrm"), &back));
    CHECK(back && nr_net_layer_count(back) == nr_net_layer_count(net) &&
              nr_net_param_count(back) == nr_net_param_count(net) && nr_net_head(back) == NR_LOSS_XENT &&
              nr_net_scaling(back) == NR_SCALE_STANDARD,
          "the loaded network has the saved one's shape, head and scaling");
    CHECK_OK(nr_net_predict(back, x, 9, p2));
    CHECK(memcmp(p1, p2, sizeof p1) == 0, "save -> load -> predict is bit-identical");
    CHECK(memcmp(nr_net_params(net), nr_net_params(back), nr_net_param_count(net) * sizeof(float)) == 0,
          "weights are bit-identical");
    float sum = 0;
    for (int j = 0; j < 4; j++)
        sum += p1[j];
    CHECK(sum > 0.999f && sum < 1.001f, "a classifier predicts probabilities (sum %g)", (double)sum);
    nr_net_free(back);
    CHECK(access(path("m.nrm.tmp"), F_OK) != 0, "no temporary file left");

    /* Saving over an existing model into an unwritable place fails and leaves the old file whole. */
    size_t len;
    unsigned char *good = slurp(path("m.nrm"), &len);
    CHECK_ERR(nr_model_save(net, "/nonexistent-dir/m.nrm"), NR_EIO);
    mkdir(path("ro"), 0500);
    if (geteuid() != 0) {
        CHECK_ERR(nr_model_save(net, path("ro/m.nrm")), NR_EIO);
    }

    /* Damage of every kind. */
    spit(path("trunc.nrm"), good, len - 10);
    refused("trunc.nrm", "truncated");
    spit(path("short.nrm"), good, 20);
    refused("short.nrm", "not a neurite model");
    unsigned char *d = malloc(len + 64);
    memcpy(d, good, len);
    d[len / 2] ^= 0x10;
    spit(path("flip.nrm"), d, len);
    refused("flip.nrm", "checksum mismatch");
    memcpy(d, good, len);
    d[0] = 'X';
    spit(path("magic.nrm"), d, len);
    refused("magic.nrm", "bad magic");
    memcpy(d, good, len);
    put32(d + 8, 99);
    reseal(d, len);
    spit(path("version.nrm"), d, len);
    refused("version.nrm", "version 99");
    memcpy(d, good, len);
    memcpy(d + len, "junk", 4);
    spit(path("trailing.nrm"), d, len + 4);
    refused("trailing.nrm", "trailing bytes");
    /* The first section is ARCH at offset 24: tag, u64 size, then h w c head L. */
    memcpy(d, good, len);
    put32(d + 24 + 12 + 16, 0x7fffffff);  /* absurd layer count */
    reseal(d, len);
    spit(path("layers.nrm"), d, len);
    refused("layers.nrm", "layers");
    memcpy(d, good, len);
    put32(d + 24 + 12, 0);  /* input height 0 */
    reseal(d, len);
    spit(path("input.nrm"), d, len);
    refused("input.nrm", "input shape");
    memcpy(d, good, len);
    for (int i = 0; i < 8; i++)
        d[24 + 4 + i] = 0xff;  /* ARCH claims 2^64 - 1 bytes */
    reseal(d, len);
    spit(path("section.nrm"), d, len);
    refused("section.nrm", "runs past the end");
    memcpy(d, good, len);
    memcpy(d + 24, "ZZZZ", 4);
    reseal(d, len);
    spit(path("required.nrm"), d, len);
    refused("required.nrm", "ZZZZ");
    memcpy(d, good, len);
    memcpy(d + 24, "zzzz", 4);  /* an optional section: skipped, but then ARCH is missing */
    reseal(d, len);
    spit(path("optional.nrm"), d, len);
    refused("optional.nrm", "comes before ARCH");
    /* The first layer's tag "dense" (after u8 length at 24+12+20) renamed to an unknown kind. */
    memcpy(d, good, len);
    memcpy(d + 24 + 12 + 21, "dunce", 5);
    reseal(d, len);
    spit(path("kind.nrm"), d, len);
    refused("kind.nrm", "unknown kind 'dunce'");
    /* The first dense layer's units (its first integer setting) made huge: more weights than bytes. */
    memcpy(d, good, len);
    size_t units_at = 24 + 12 + 20 + 1 + 5 + 1;
    for (int i = 0; i < 8; i++)
        d[units_at + i] = i == 3 ? 1 : 0;  /* 2^24 units: fine for the layer, not for the file */
    reseal(d, len);
    spit(path("units.nrm"), d, len);
    refused("units.nrm", "parameters");
    free(d);
    free(good);
    refused("missing.nrm", "cannot open");
    CHECK_ERR(nr_model_load(NULL, &back), NR_EINVAL);
    nr_net *empty = nr_net_new(3);
    CHECK_ERR(nr_model_save(empty, path("empty.nrm")), NR_EINVAL);
    nr_net_free(empty);
    nr_net_free(net);

    /* An image network with every image layer: after training steps (so batch norm's running statistics
     * and the weights are not their initial values) it round-trips bit for bit. */
    nr_net *img = nr_net_new_image(9, 7, 2);
    CHECK_OK(nr_net_add_spec(img, "conv4k3-bn-relu-maxpool2-conv3k2s1p1-avgpool2-drop0.25-flatten-fc5", NR_ACT_RELU));
    nr_rng_seed(&r, 4);
    nr_net_init(img, NR_INIT_AUTO, &r);
    nr_net_set_head(img, NR_LOSS_XENT);
    float xi[6 * 126], pi1[6 * 5], pi2[6 * 5];
    int32_t li[6] = {0, 1, 2, 3, 4, 0};
    for (int i = 0; i < 6 * 126; i++)
        xi[i] = (float)nr_rng_normal(&r);
    nr_optimizer *o = nr_opt_new(img, &(nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.01f});
    for (int s = 0; s < 3; s++)
        CHECK_OK(nr_net_train_batch(img, o, NR_LOSS_XENT, xi, NULL, li, 6, NULL));
    nr_opt_free(o);
    CHECK_OK(nr_net_predict(img, xi, 6, pi1));
    CHECK_OK(nr_model_save(img, path("img.nrm")));
    CHECK_OK(nr_model_load(path("img.nrm"), &back));
    CHECK(back && nr_net_layer_count(back) == nr_net_layer_count(img), "image network loaded");
    CHECK_OK(nr_net_predict(back, xi, 6, pi2));
    CHECK(memcmp(pi1, pi2, sizeof pi1) == 0, "image network: save -> load -> predict is bit-identical");
    nr_net_free(back);
    nr_net_free(img);

    /* A file of format version 1, written by the first neurite, still loads and predicts as it did. */
    nr_net *old = NULL;
    CHECK_OK(nr_model_load("tests/data/v1-mlp.nrm", &old));
    FILE *ef = fopen("tests/data/v1-mlp.expected", "r");
    float xo[18], po[12], want[12];
    for (int i = 0; i < 18; i++)
        xo[i] = (float)(i * 1.7 - 9);
    int got = 0;
    for (int i = 0; ef && i < 12; i++)
        got += fscanf(ef, "%a", &want[i]) == 1;
    if (ef)
        fclose(ef);
    CHECK(got == 12, "the expected predictions of the version-1 file are readable");
    if (old && got == 12) {
        CHECK_OK(nr_net_predict(old, xo, 3, po));
        double worst = 0;
        for (int i = 0; i < 12; i++)
            worst = fmax(worst, fabs(po[i] - want[i]));
        CHECK(worst < 1e-6, "the version-1 model predicts as when it was saved (worst difference %g)", worst);
    }
    nr_net_free(old);

    /* Our CRC-32 is the standard one. */
    CHECK(nr__crc32(0, "123456789", 9) == 0xcbf43926u, "crc32 check value");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "chmod -R u+w %s; rm -rf %s", dir, dir);
    CHECK(system(cmd) == 0, "clean up");
    return check_report("test_model");
}
