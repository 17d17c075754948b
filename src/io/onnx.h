/* onnx.h - what the ONNX importer (onnx_import.c) and exporter (onnx_export.c) share: the generated message
 * types and data type codes. */
#ifndef NR_ONNX_H
#define NR_ONNX_H

#include "core/net.h"
#include "io/layout.h"

#ifdef NR_HAVE_ONNX
#include <onnx.pb-c.h>
#endif

/* ONNX TensorProto data types neurite reads. */
enum { ONNX_FLOAT = 1, ONNX_UINT8 = 2, ONNX_INT8 = 3, ONNX_INT32 = 6, ONNX_INT64 = 7, ONNX_DOUBLE = 11 };

#endif
