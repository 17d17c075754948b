// ort_infer.js - ONNX Runtime's side of bench/int8.py: times inference of one model over the Fashion-MNIST test
// images (raw pixels, as neurite's exports take them) in batches of B.
//
//   node ort_infer.js MODEL.onnx IMAGES.f32 COUNT BATCH THREADS REPEATS
//
// IMAGES.f32 holds COUNT x 784 float32 values, given to the model as (batch, 28, 28, 1): neurite's exports of
// image models take channels-last images. Prints one line: RESULT {"times": [...], ...}, the seconds of
// each timed pass (after one untimed pass), the clock around session.run only.
"use strict";
const fs = require("fs");
const ort = require("onnxruntime-node");

async function main() {
    const [model, images, countText, batchText, threadsText, repeatsText] = process.argv.slice(2);
    const count = Number(countText), batch = Number(batchText), repeats = Number(repeatsText);
    const raw = fs.readFileSync(images);
    const x = new Float32Array(raw.buffer, raw.byteOffset, count * 784);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: Number(threadsText), interOpNumThreads: 1, graphOptimizationLevel: "all"
    });
    const name = session.inputNames[0];
    const feeds = [];
    for (let i = 0; i < count; i += batch) {
        const m = Math.min(batch, count - i);
        feeds.push({ [name]: new ort.Tensor("float32", x.subarray(i * 784, (i + m) * 784), [m, 28, 28, 1]) });
    }
    const times = [];
    for (let r = -1; r < repeats; r++) {
        const t0 = process.hrtime.bigint();
        for (const f of feeds)
            await session.run(f);
        if (r >= 0)
            times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    console.log("RESULT " + JSON.stringify({ times, images: count, batch, threads: Number(threadsText) }));
}

main().catch((e) => {
    console.error("ort_infer: " + e.message);
    process.exit(1);
});
