// helper_ort.js - runs an ONNX model in ONNX Runtime (npm's onnxruntime-node), for tests/test_onnx.py to
// compare with neurite: the other implementation of the same model.
//
//   node helper_ort.js MODEL.onnx INPUT.f32 OUTPUT.f32 DIM...
//
// INPUT.f32 holds float32 values (little-endian) of shape DIM... (the first is the batch); the model's first
// output is written to OUTPUT.f32 the same way. Prints the output's shape and ONNX Runtime's version.
"use strict";
const fs = require("fs");
const ort = require("onnxruntime-node");

async function main() {
    const [model, input, output, ...dims] = process.argv.slice(2);
    const shape = dims.map(Number);
    const raw = fs.readFileSync(input);
    const x = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    const feeds = {};
    feeds[session.inputNames[0]] = new ort.Tensor("float32", x, shape);
    const result = await session.run(feeds);
    const y = result[session.outputNames[0]];
    fs.writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    console.log(JSON.stringify({ shape: y.dims, version: ort.env.versions ? ort.env.versions.common : "" }));
}

main().catch((e) => {
    console.error("helper_ort: " + e.message);
    process.exit(1);
});
