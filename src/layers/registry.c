/* layers.c - the registry of layer kinds, by the stable tag written in model files. A new kind is added here
 * and in internal.h, and nowhere else. */
#include "core/internal.h"

static const nr_layer_ops *const kinds[] = {
    &nr__dense_ops,
    &nr__identity_ops,
    &nr__relu_ops,
    &nr__leaky_relu_ops,
    &nr__sigmoid_ops,
    &nr__tanh_ops,
    &nr__softmax_ops,
    &nr__conv2d_ops,
    &nr__maxpool_ops,
    &nr__avgpool_ops,
    &nr__flatten_ops,
    &nr__batchnorm_ops,
    &nr__dropout_ops,
};

const nr_layer_ops *nr__layer_ops_by_tag(const char *tag)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->tag, tag) == 0)
            return kinds[i];
    return NULL;
}
