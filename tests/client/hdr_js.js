// The independent side of tests/client/test_hdr.py: hdr-histogram-js (HdrHistogram's
// JavaScript port) reads wharf's interval log, or writes a log for wharf to read.
//   node hdr_js.js read LOG        -> JSON: intervals, tags, total count, percentiles (ns)
//   node hdr_js.js write LOG SEED  -> a log of 3 intervals of known values; JSON of them
"use strict";
const fs = require("fs");
const hdr = require("hdr-histogram-js");

const PCTS = [50, 90, 99, 99.9, 100];

function summary(h) {
    const out = { count: h.totalCount, max: h.maxValue, min: h.minNonZeroValue, pct: {} };
    for (const p of PCTS) out.pct[p] = h.getValueAtPercentile(p);
    return out;
}

function read(path) {
    const text = fs.readFileSync(path, "utf8");
    const reader = new hdr.HistogramLogReader(text);
    const total = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 2 ** 40 - 1,
                              numberOfSignificantValueDigits: 2 });
    const intervals = [];
    let h;
    while ((h = reader.nextIntervalHistogram()) !== null) {
        intervals.push({ tag: h.tag || null, count: h.totalCount, start_ms: h.startTimeStampMsec,
                         end_ms: h.endTimeStampMsec });
        if (h.tag !== "warmup") total.add(h);
    }
    console.log(JSON.stringify({ intervals, total: summary(total) }));
}

function write(path, seed) {
    let x = seed >>> 0 || 1;
    const rnd = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
    const lines = [];
    const w = new hdr.HistogramLogWriter((s) => lines.push(s));
    w.outputLogFormatVersion();
    w.outputStartTime(1700000000000);
    w.outputLegend();
    const total = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 2 ** 40 - 1,
                              numberOfSignificantValueDigits: 3 });
    for (let i = 0; i < 3; i++) {
        const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 2 ** 40 - 1,
                              numberOfSignificantValueDigits: 3 });
        h.startTimeStampMsec = 1700000000000 + i * 1000;
        h.endTimeStampMsec = h.startTimeStampMsec + 1000;
        for (let k = 0; k < 5000; k++) h.recordValue(20000 + (rnd() % 5000000));
        total.add(h);
        w.outputIntervalHistogram(h);
    }
    fs.writeFileSync(path, lines.join(""));
    console.log(JSON.stringify({ total: summary(total) }));
}

if (process.argv[2] === "read") read(process.argv[3]);
else write(process.argv[3], Number(process.argv[4]));
