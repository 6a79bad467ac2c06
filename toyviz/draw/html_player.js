/* The player of a toyviz HTML export (toyviz/draw/html_export.py): decodes the shipped frames (D's weights, G's
   points), recomputes D's per-layer activation patterns, region colours, D(x) and ∇ₓD over the grid in the
   browser, and draws the panels with a play button and a step slider.

   `toyvizKernel` is the arithmetic, shared by the page and its web workers (which get its source text): the
   forward pass in float64 over float32 weights and float32 grid points, patterns `pre > 0` packed 64 units to a
   word, and the colour hash of toyviz.geometry.patterns (SplitMix64 on 64-bit words held as two uint32 halves,
   then the same HSV formula and round-half-to-even), so a region has the colour the PNG/MP4 gives it. */
"use strict";

function toyvizKernel() {
  // ---- 64-bit words as (hi, lo) uint32 halves; results in H, L ----------------------------------------------------
  let H = 0, L = 0;

  function mul64(ah, al, bh, bl) {
    // the low 64 bits of a·b: al·bl exactly from 16-bit pieces (each product < 2^32, sums < 2^34: exact doubles),
    // plus the cross terms ah·bl + al·bh, which only reach the high half (mod 2^32: Math.imul)
    const a0 = al & 0xFFFF, a1 = al >>> 16, b0 = bl & 0xFFFF, b1 = bl >>> 16;
    const mid = a1 * b0 + a0 * b1;
    const low = a0 * b0 + (mid % 65536) * 65536;
    L = low >>> 0;
    H = (a1 * b1 + Math.floor(mid / 65536) + Math.floor(low / 4294967296) + Math.imul(ah, bl) + Math.imul(al, bh))
      >>> 0;
  }

  function xorShift(h, l, n) {              // (h, l) ^ ((h, l) >> n), 0 < n < 32
    L = (l ^ ((l >>> n) | (h << (32 - n)))) >>> 0;
    H = (h ^ (h >>> n)) >>> 0;
  }

  function splitmix(h, l) {                 // Steele, Lea & Flood's SplitMix64 finalizer (patterns.splitmix64)
    const lo = l + 0x7F4A7C15;              // + 0x9E3779B97F4A7C15
    l = lo >>> 0;
    h = (h + 0x9E3779B9 + (lo > 0xFFFFFFFF ? 1 : 0)) >>> 0;
    xorShift(h, l, 30);
    mul64(H, L, 0xBF58476D, 0x1CE4E5B9);
    xorShift(H, L, 27);
    mul64(H, L, 0x94D049BB, 0x133111EB);
    xorShift(H, L, 31);
  }

  function patternHash(words, n) {          // patterns.pattern_hash of one row of n words [lo0, hi0, lo1, hi1, ...]
    let h = 0, l = 0;
    for (let k = 0; k < n; k++) {
      splitmix(words[2 * k + 1], words[2 * k]);
      splitmix((h ^ H) >>> 0, (l ^ L) >>> 0);
      h = H; l = L;
    }
    H = h; L = l;
  }

  // ---- colours: patterns.hash_colors (HSV from the low 32 bits of the hash) -----------------------------------
  const PHI_A = [[0, 0, 1, 1, 1, 0], [1, 0, 0, 0, 1, 1], [1, 1, 1, 0, 0, 0]];
  const PHI_B = [[0, 1, 0, 0, -1, 0], [-1, 0, 0, 1, 0, 0], [0, 0, -1, 0, 0, 1]];

  function roundHalfEven(v) {               // numpy's round
    const f = Math.floor(v), d = v - f;
    return d > 0.5 ? f + 1 : d < 0.5 ? f : (f % 2 === 0 ? f : f + 1);
  }

  function hashRGB(lo) {                    // -> [r, g, b]
    const hue = (lo & 0xFFFF) * (6.0 / 65536.0);
    const sat = 0.45 + 0.5 * ((lo >>> 16) & 0xFF) / 255.0;
    const val = 0.6 + 0.4 * ((lo >>> 24) & 0xFF) / 255.0;
    const sector = Math.floor(hue), f = hue - sector, rgb = [0, 0, 0];
    for (let c = 0; c < 3; c++) {
      const phi = PHI_A[c][sector] + PHI_B[c][sector] * f;
      rgb[c] = roundHalfEven(val * (1.0 - sat * phi) * 255);
    }
    return rgb;
  }

  function hashRGBA(lo) {                   // packed as one little-endian uint32 of an ImageData
    const c = hashRGB(lo);
    return (0xFF000000 | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0;
  }

  // ---- the net and the grid --------------------------------------------------------------------------------------
  function buildNet(params, widths, slope) {
    // params: float32 in html_export.d_parameters' order: per hidden layer W (out, in) row-major then b; then
    // the output row and bias
    const W = [], b = [];
    let off = 0, fanIn = 2;
    for (const w of widths) {
      W.push(params.slice(off, off + w * fanIn)); off += w * fanIn;
      b.push(Float64Array.from(params.subarray(off, off + w))); off += w;
      fanIn = w;
    }
    const wOut = Float64Array.from(params.subarray(off, off + fanIn)); off += fanIn;
    const bOut = params[off++];
    if (off !== params.length) throw new Error(`D's weights: expected ${off} numbers, got ${params.length}`);
    return {widths: widths.slice(), depth: widths.length, W, b, wOut, bOut, slope};
  }

  function linspace(start, stop, num) {     // numpy.linspace, each point rounded to float32 as torch's grid is
    const out = new Float64Array(num), div = num - 1, step = (stop - start) / div;
    for (let i = 0; i < num; i++) out[i] = Math.fround(i * step + start);
    if (num > 1) out[num - 1] = Math.fround(stop);
    return out;
  }

  // ---- the forward pass, one linear region at a time ---------------------------------------------------------------
  // Inside a region of constant pattern of layers 1..l−1, layer l's pre-activations are affine in the point:
  // pre_l = T_l·(x, y, 1), with T_1 = [W_1 | b_1] and T_l = W_l·S_{l−1}·T_{l−1} + [0 | b_l], S = diag(1 where
  // pre > 0, else the leaky slope). T_l is built once per region the grid meets (one 4-row product, w_l·w_{l−1}·4
  // multiply-adds), then costs 3·w_l a pixel instead of w_l·w_{l−1}: cheaper than a plain forward pass once regions
  // average more than about 4 pixels (ring8's D at 256², ~18,000 regions: about 1.5× faster). The logit's map
  // T_out = w_out·S_L·T_L + [0 | b_out] holds ∇ₓ logit in its first two entries: the region's exact gradient
  // (raster.Probe.chain_gradient; the slope also where pre is NaN).
  // All in float64 from float32 weights and points; every T depends on the pattern only, so any pixel (or a
  // hovered point) of a region gets the same numbers.

  function dense4(A, nIn, W, nOut, P) {
    // P[q, u] = Σ_k A[q, k]·W[u, k] for the 4 rows q of A: 4 rows × 4 units at a time (16 sums in registers),
    // each sum in the order k = 0, 1, ...
    const u4 = nOut - (nOut % 4), o1 = nIn, o2 = 2 * nIn, o3 = 3 * nIn, d1 = nOut, d2 = 2 * nOut, d3 = 3 * nOut;
    let u = 0;
    for (; u < u4; u += 4) {
      const r0 = u * nIn, r1 = r0 + nIn, r2 = r1 + nIn, r3 = r2 + nIn;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let k = 0; k < nIn; k++) {
        const a0 = A[k], a1 = A[o1 + k], a2 = A[o2 + k], a3 = A[o3 + k];
        let w = W[r0 + k]; s00 += a0 * w; s01 += a1 * w; s02 += a2 * w; s03 += a3 * w;
        w = W[r1 + k]; s10 += a0 * w; s11 += a1 * w; s12 += a2 * w; s13 += a3 * w;
        w = W[r2 + k]; s20 += a0 * w; s21 += a1 * w; s22 += a2 * w; s23 += a3 * w;
        w = W[r3 + k]; s30 += a0 * w; s31 += a1 * w; s32 += a2 * w; s33 += a3 * w;
      }
      P[u] = s00; P[d1 + u] = s01; P[d2 + u] = s02; P[d3 + u] = s03;
      P[u + 1] = s10; P[d1 + u + 1] = s11; P[d2 + u + 1] = s12; P[d3 + u + 1] = s13;
      P[u + 2] = s20; P[d1 + u + 2] = s21; P[d2 + u + 2] = s22; P[d3 + u + 2] = s23;
      P[u + 3] = s30; P[d1 + u + 3] = s31; P[d2 + u + 3] = s32; P[d3 + u + 3] = s33;
    }
    for (; u < nOut; u++) {
      const r0 = u * nIn;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < nIn; k++) {
        const w = W[r0 + k];
        s0 += A[k] * w; s1 += A[o1 + k] * w; s2 += A[o2 + k] * w; s3 += A[o3 + k] * w;
      }
      P[u] = s0; P[d1 + u] = s1; P[d2 + u] = s2; P[d3 + u] = s3;
    }
  }

  function layerMap(net, l, prev, pre, scaled) {
    // T_{l+1} (rows: x coefficients, y coefficients, constants; a 4th row of scratch) from T_l and layer l's
    // pre-activations at this point (0-based l); `scaled`: 4·width scratch whose 4th row stays 0
    const last = l === net.depth, w = last ? 1 : net.widths[l], nIn = net.widths[l - 1];
    const T = new Float64Array(4 * w);
    for (let k = 0; k < nIn; k++) {
      const s = pre[k] > 0 ? 1 : net.slope;
      scaled[k] = s * prev[k]; scaled[nIn + k] = s * prev[nIn + k]; scaled[2 * nIn + k] = s * prev[2 * nIn + k];
    }
    dense4(scaled, nIn, last ? net.wOut : net.W[l], w, T);
    const b = last ? [net.bOut] : net.b[l];
    for (let u = 0; u < w; u++) T[2 * w + u] += b[u];
    return T;
  }

  const MAX_MAPS = 200000;                   // affine maps kept per layer (a guard on memory: ~3·width doubles each)

  function band(net, xs, ys, r0, r1, gradient) {
    // Rows r0 .. r1 of the grid (pixel [i, j] = (xs[j], ys[i])): per layer the 64-bit hash of its pattern and of
    // the joint pattern of layers 1..l (cumulative), the logit, and with `gradient` ∇ₓ logit. Runs of equal
    // pattern along a row reuse the previous pixel's hashes and maps. `pre`: the last pixel's pre-activations.
    const R = xs.length, n = (r1 - r0) * R, depth = net.depth, widths = net.widths;
    const pre = widths.map(w => new Float64Array(w));
    const nWords = widths.map(w => Math.ceil(w / 64));
    const words = nWords.map(k => new Uint32Array(2 * k)), prev = nWords.map(k => new Uint32Array(2 * k));
    const out = {r0, r1, layerHi: [], layerLo: [], cumHi: [], cumLo: [], logit: new Float64Array(n),
                 gradient: gradient ? new Float64Array(2 * n) : null, pre};
    for (let l = 0; l < depth; l++) {
      for (const key of ["layerHi", "layerLo", "cumHi", "cumLo"]) out[key].push(new Uint32Array(n));
    }
    const hH = new Uint32Array(depth), hL = new Uint32Array(depth), cH = new Uint32Array(depth),
      cL = new Uint32Array(depth);
    const w1 = widths[0], T1 = new Float64Array(4 * w1);
    for (let u = 0; u < w1; u++) {
      T1[u] = net.W[0][2 * u]; T1[w1 + u] = net.W[0][2 * u + 1]; T1[2 * w1 + u] = net.b[0][u];
    }
    const scaled = new Float64Array(4 * Math.max(...widths));
    const maps = [null, ...widths.map(() => new Map())];     // maps[l]: region of layers 1..l (0-based) -> T_{l+1}
    const cur = [T1];                                         // this pixel's T_1 .. T_L, T_out
    for (let p = 0; p < n; p++) {
      const i = Math.floor(p / R), x = xs[p - i * R], y = ys[r0 + i];
      let changed = p === 0;                                  // the joint pattern so far differs from the last pixel's
      for (let l = 0; l <= depth; l++) {
        if (l > 0 && changed) {                               // a new region of layers 1..l: its map T_{l+1}
          const key = cH[l - 1] * 4294967296 + cL[l - 1], hit = maps[l].get(key);
          if (hit && hit.h === cH[l - 1] && hit.l === cL[l - 1]) cur[l] = hit.T;
          else {
            scaled.fill(0);
            cur[l] = layerMap(net, l, cur[l - 1], pre[l - 1], scaled);
            if (!hit) {
              if (maps[l].size >= MAX_MAPS) maps[l].clear();
              maps[l].set(key, {h: cH[l - 1], l: cL[l - 1], T: cur[l]});
            }
          }
        }
        const T = cur[l];
        if (l === depth) {
          out.logit[p] = T[0] * x + T[1] * y + T[2];                // rows of one unit: [0], [1], [2]
          if (gradient) { out.gradient[2 * p] = T[0]; out.gradient[2 * p + 1] = T[1]; }
          break;
        }
        const P = pre[l], w = widths[l], wd = words[l];
        wd.fill(0);
        for (let u = 0; u < w; u++) {
          const v = T[u] * x + T[w + u] * y + T[2 * w + u];
          P[u] = v;
          if (v > 0) wd[u >>> 5] |= 1 << (u & 31);
        }
        let same = p > 0;
        for (let k = 0; same && k < wd.length; k++) same = wd[k] === prev[l][k];
        if (!same) {
          patternHash(wd, nWords[l]);
          hH[l] = H; hL[l] = L;
          prev[l].set(wd);
          changed = true;
        }
        if (changed) {
          if (l === 0) { cH[0] = hH[0]; cL[0] = hL[0]; } else {
            splitmix((cH[l - 1] ^ hH[l]) >>> 0, (cL[l - 1] ^ hL[l]) >>> 0);
            cH[l] = H; cL[l] = L;
          }
        }
        out.layerHi[l][p] = hH[l]; out.layerLo[l][p] = hL[l]; out.cumHi[l][p] = cH[l]; out.cumLo[l][p] = cL[l];
      }
    }
    return out;
  }

  function bits(P, w) {                     // "0110…" of one pattern, unit 1 first
    let s = "";
    for (let u = 0; u < w; u++) s += P[u] > 0 ? "1" : "0";
    return s;
  }

  function pointInfo(net, x, y) {           // one point, by the same arithmetic as the maps
    const b = band(net, Float64Array.of(x), Float64Array.of(y), 0, 1, true);
    return {bits: b.pre.map((P, l) => bits(P, net.widths[l])), grad: [b.gradient[0], b.gradient[1]],
            logit: b.logit[0]};
  }

  return {splitmix, patternHash, hashRGB, hashRGBA, roundHalfEven, buildNet, linspace, band, pointInfo, mul64,
          get H() { return H; }, get L() { return L; }};
}

if (typeof module !== "undefined" && module.exports) module.exports = toyvizKernel;     // node: the kernel alone

// ---- the page ----------------------------------------------------------------------------------------------------
(function () {
  if (typeof document === "undefined") return;
  const K = toyvizKernel();
  const $ = id => document.getElementById(id);
  const M = JSON.parse($("toyviz-manifest").textContent);
  const F = M.frames.length, R = M.resolution, depth = M.net.widths.length;
  const [x0, x1, y0, y1] = M.extent;
  const xs = K.linspace(x0, x1, R), ys = K.linspace(y1, y0, R);       // row 0 is the top, as raster.axes
  const slope = M.net.activation === "leaky_relu" ? M.net.slope : 0;
  const status = $("tv-status"), stepLabel = $("tv-step"), slider = $("tv-slider"), playButton = $("tv-play");
  const api = {manifest: M, errors: []};
  window.toyviz = api;

  function fail(err) {
    const text = String(err && err.message || err);
    api.errors.push(text);
    $("tv-error").textContent = "toyviz: " + text;
    status.textContent = "";
    console.error(err);
  }

  // ---- decoding the shipped frames ------------------------------------------------------------------------------
  function halfToFloat(h) {
    const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1F, f = h & 0x3FF;
    if (e === 0) return s * f * 2 ** -24;
    if (e === 31) return f ? NaN : s * Infinity;
    return s * (1 + f / 1024) * 2 ** (e - 15);
  }

  async function inflate(bytes) {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser cannot unpack the frames (it lacks DecompressionStream: use Chrome or Edge 80+, "
                      + "Firefox 113+ or Safari 16.4+)");
    }
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function unpackField(buf, offset, count, size) {
    // html_export.pack_field inverted: bytes back from their planes, then each frame XORed with the one before
    const T = F * count, bytes = new Uint8Array(T * size);
    for (let b = 0; b < size; b++) {
      const base = offset + b * T;
      for (let e = 0; e < T; e++) bytes[e * size + b] = buf[base + e];
    }
    const words = size === 4 ? new Uint32Array(bytes.buffer) : new Uint16Array(bytes.buffer);
    for (let i = count; i < T; i++) words[i] ^= words[i - count];
    if (size === 4) return new Float32Array(bytes.buffer);
    const out = new Float32Array(T);
    for (let i = 0; i < T; i++) out[i] = halfToFloat(words[i]);
    return out;
  }

  async function decode() {
    if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error("a big-endian machine is not supported");
    const text = atob($("toyviz-blob").textContent.trim()), raw = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) raw[i] = text.charCodeAt(i);
    const buf = await inflate(raw), fields = {};
    let offset = 0;
    for (const f of M.fields) {
      const size = f.dtype === "f4" ? 4 : 2;
      fields[f.name] = {data: unpackField(buf, offset, f.count, size), count: f.count};
      offset += F * f.count * size;
    }
    if (offset !== buf.length) throw new Error(`the frames hold ${buf.length} bytes, expected ${offset}`);
    return fields;
  }

  // ---- workers --------------------------------------------------------------------------------------------------
  function workerMain() {
    const KW = toyvizKernel();                              // eslint-disable-line no-undef
    self.onmessage = e => {
      const t = e.data;
      try {
        const net = KW.buildNet(t.params, t.widths, t.slope);
        const r = KW.band(net, t.xs, t.ys, t.r0, t.r1, t.gradient);
        const transfer = [r.logit.buffer, ...[r.layerHi, r.layerLo, r.cumHi, r.cumLo].flat().map(a => a.buffer)];
        if (r.gradient) transfer.push(r.gradient.buffer);
        self.postMessage({id: t.id, result: r}, transfer);
      } catch (err) {
        self.postMessage({id: t.id, error: String(err && err.stack || err)});
      }
    };
  }

  class Pool {
    // Bands of a frame's rows computed in parallel by web workers; on the page itself when none can start
    constructor() {
      this.workers = []; this.idle = []; this.queue = []; this.jobs = new Map(); this.next = 0;
      const n = Math.max(1, Math.min(8, (navigator.hardwareConcurrency || 2)));
      try {
        const src = `${toyvizKernel.toString()}\n(${workerMain.toString()})();`;
        const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
        for (let i = 0; i < n; i++) {
          const w = new Worker(url);
          w.onmessage = e => this.done(w, e.data);
          w.onerror = e => { e.preventDefault(); this.broken(w, e.message || "a worker failed"); };
          this.workers.push(w); this.idle.push(w);
        }
      } catch (err) {
        this.workers = []; this.idle = [];
      }
    }
    get size() { return Math.max(1, this.workers.length); }
    run(task) {
      return new Promise((resolve, reject) => {
        task.id = this.next++;
        this.jobs.set(task.id, {resolve, reject, task});
        if (!this.workers.length) { setTimeout(() => this.inline(task), 0); return; }
        this.queue.push(task);
        this.pump();
      });
    }
    inline(task) {
      const job = this.jobs.get(task.id);
      this.jobs.delete(task.id);
      try {
        job.resolve(K.band(K.buildNet(task.params, task.widths, task.slope), task.xs, task.ys, task.r0, task.r1,
                           task.gradient));
      } catch (err) { job.reject(err); }
    }
    pump() {
      while (this.idle.length && this.queue.length) {
        const w = this.idle.pop(), task = this.queue.shift();
        w.busy = task.id;
        w.postMessage(task);
      }
    }
    done(w, msg) {
      const job = this.jobs.get(msg.id);
      this.jobs.delete(msg.id);
      w.busy = undefined;
      this.idle.push(w);
      this.pump();
      if (!job) return;
      if (msg.error) job.reject(new Error(msg.error)); else job.resolve(msg.result);
    }
    broken(w, message) {                  // a worker that cannot run (e.g. blocked): finish its job on the page
      this.workers = this.workers.filter(x => x !== w);
      this.idle = this.idle.filter(x => x !== w);
      const id = w.busy;
      w.terminate();
      if (!this.workers.length) { for (const t of this.queue.splice(0)) setTimeout(() => this.inline(t), 0); }
      if (id !== undefined && this.jobs.has(id)) setTimeout(() => this.inline(this.jobs.get(id).task), 0);
      console.warn("toyviz: " + message + "; computing on the page instead");
    }
  }

  // ---- one frame: the raw grid and what the panels show ------------------------------------------------------------
  let fields = null, pool = null;
  const nets = new Map();

  function netOf(f) {
    if (!nets.has(f)) {
      const P = fields.D.count;
      nets.set(f, K.buildNet(fields.D.data.subarray(f * P, (f + 1) * P), M.net.widths, slope));
      if (nets.size > 8) nets.delete(nets.keys().next().value);
    }
    return nets.get(f);
  }

  async function rawFrame(f, gradient) {
    const P = fields.D.count, params = fields.D.data.slice(f * P, (f + 1) * P), n = pool.size;
    const bands = [];
    for (let b = 0; b < n; b++) {
      const r0 = Math.floor(b * R / n), r1 = Math.floor((b + 1) * R / n);
      if (r1 > r0) bands.push(pool.run({params, widths: M.net.widths, slope, xs, ys, r0, r1, gradient}));
    }
    const parts = await Promise.all(bands), N = R * R;
    const out = {layerHi: [], layerLo: [], cumHi: [], cumLo: [], logit: new Float64Array(N),
                 gradient: gradient ? new Float64Array(2 * N) : null};
    for (const key of ["layerHi", "layerLo", "cumHi", "cumLo"]) {
      for (let l = 0; l < depth; l++) {
        const a = new Uint32Array(N);
        for (const p of parts) a.set(p[key][l], p.r0 * R);
        out[key].push(a);
      }
    }
    for (const p of parts) {
      out.logit.set(p.logit, p.r0 * R);
      if (gradient) out.gradient.set(p.gradient, 2 * p.r0 * R);
    }
    return out;
  }

  function countDistinct(hi, lo) {
    const seen = new Set();
    let ph = -1, pl = -1;
    for (let i = 0; i < hi.length; i++) {
      if (hi[i] !== ph || lo[i] !== pl) { ph = hi[i]; pl = lo[i]; seen.add(ph * 4294967296 + pl); }
    }
    return seen.size;
  }

  function paintHashes(lo, img) {
    const px = new Uint32Array(img.data.buffer);
    let prev = -1, c = 0;
    for (let i = 0; i < lo.length; i++) {
      if (lo[i] !== prev) { prev = lo[i]; c = K.hashRGBA(prev); }
      px[i] = c;
    }
  }

  function percentile(sorted, q) {          // numpy's default (linear) percentile of a sorted array
    const pos = q / 100 * (sorted.length - 1), i = Math.floor(pos), f = pos - i;
    return i + 1 < sorted.length ? sorted[i] + (sorted[i + 1] - sorted[i]) * f : sorted[i];
  }

  function probImage(prob, faded) {         // frames.prob_rgb (RdBu, level contour in black), faded for grad
    let lo = 0, hi = 1, level = 0.5;
    if (!M.probability) {
      const s = Float64Array.from(prob).sort();
      lo = Math.min(percentile(s, 2), -1e-6); hi = Math.max(percentile(s, 98), 1e-6);
      const m = Math.max(-lo, hi); lo = -m; hi = m; level = 0;
    }
    const img = new ImageData(R, R), d = img.data, lut = M.prob_lut;
    for (let i = 0; i < R * R; i++) {
      const x = (prob[i] - lo) / (hi - lo);
      let k = Number.isNaN(x) ? -1 : x >= 1 ? 255 : x < 0 ? 0 : Math.floor(x * 256);
      let r = 0, g = 0, b = 0;
      if (k >= 0) { k = Math.min(k, 255); r = lut[3 * k]; g = lut[3 * k + 1]; b = lut[3 * k + 2]; }
      const row = Math.floor(i / R), col = i - row * R, above = prob[i] >= level;
      if ((row > 0 && above !== (prob[i - R] >= level)) || (col > 0 && above !== (prob[i - 1] >= level))) {
        r = g = b = 0;
      }
      if (faded) { r = (r >> 1) + 127; g = (g >> 1) + 127; b = (b >> 1) + 127; }
      d[4 * i] = r; d[4 * i + 1] = g; d[4 * i + 2] = b; d[4 * i + 3] = 255;
    }
    return img;
  }

  function hsvToRGB(h, s, v) {              // matplotlib.colors.hsv_to_rgb of one colour, in [0, 1]
    const i = Math.floor(h * 6), f = h * 6 - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    return [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][((i % 6) + 6) % 6];
  }

  function mosaicImage(g) {                 // frames.mosaic_rgb: hue = direction, brightness = |∇| / max |∇|
    let max = 0;
    for (let i = 0; i < R * R; i++) max = Math.max(max, Math.hypot(g[2 * i], g[2 * i + 1]));
    const img = new ImageData(R, R), d = img.data;
    for (let i = 0; i < R * R; i++) {
      const gx = g[2 * i], gy = g[2 * i + 1], hue = ((Math.atan2(gy, gx) / (2 * Math.PI)) % 1 + 1) % 1;
      const c = hsvToRGB(hue, 0.85, Math.sqrt(Math.hypot(gx, gy) / Math.max(max, 1e-12)));
      d[4 * i] = Math.floor(c[0] * 255); d[4 * i + 1] = Math.floor(c[1] * 255); d[4 * i + 2] = Math.floor(c[2] * 255);
      d[4 * i + 3] = 255;
    }
    return img;
  }

  function regionPanel(p) {                 // "regions" | "regions:L" | "cumulative:L" -> [layer, cumulative]
    const [name, arg] = p.split(":");
    return arg === undefined ? [depth - 1, true] : [Number(arg) - 1, name === "cumulative"];
  }

  function gradArrows(net) {                // ∇ₓ logit at the arrows: every k-th point of the 64² gradient grid
    const n = M.grad.resolution, k = M.grad.every, gxs = K.linspace(x0, x1, n), gys = K.linspace(y1, y0, n);
    const sx = gxs.filter((_, j) => j % k === 0), sy = gys.filter((_, i) => i % k === 0);
    const b = K.band(net, sx, sy, 0, sy.length, true), pts = [], vec = [];
    for (let i = 0; i < sy.length; i++) {
      for (let j = 0; j < sx.length; j++) {
        const p = i * sx.length + j;
        pts.push([sx[j], sy[i]]); vec.push([b.gradient[2 * p], b.gradient[2 * p + 1]]);
      }
    }
    return {pts, vec, step: Math.abs(gxs[1] - gxs[0]) * k};
  }

  const wantMosaic = M.panels.includes("mosaic");
  const wantRaster = M.panels.some(p => !p.startsWith("data") && p !== "curves");
  const cache = new Map();

  async function buildFrame(f) {
    const t0 = performance.now(), fr = {index: f, meta: M.frames[f], images: {}};
    if (wantRaster) {
      const raw = await rawFrame(f, wantMosaic);
      fr.counts = raw.layerHi.map((h, l) => countDistinct(h, raw.layerLo[l]));
      fr.cumCounts = raw.cumHi.map((h, l) => countDistinct(h, raw.cumLo[l]));
      const prob = new Float32Array(R * R);
      for (let i = 0; i < R * R; i++) {
        prob[i] = M.probability ? 1 / (1 + Math.exp(-raw.logit[i])) : raw.logit[i];
      }
      for (const p of M.panels) {
        if (p.startsWith("regions") || p.startsWith("cumulative")) {
          const [l, cum] = regionPanel(p), img = new ImageData(R, R);
          paintHashes((cum ? raw.cumLo : raw.layerLo)[l], img);
          fr.images[p] = img;
        } else if (p === "prob" || p === "grad") {
          fr.images[p] = probImage(prob, p === "grad");
        } else if (p === "mosaic") {
          fr.images[p] = mosaicImage(raw.gradient);
        }
      }
      if (M.panels.includes("grad")) fr.arrows = gradArrows(netOf(f));
    }
    fr.ms = performance.now() - t0;
    return fr;
  }

  function frame(f) {
    if (!cache.has(f)) {
      const promise = buildFrame(f);
      promise.catch(() => cache.delete(f));
      cache.set(f, promise);
      const limit = Math.max(8, Math.floor(400e6 / Math.max(1, M.panels.length * R * R * 4)));
      while (cache.size > limit) cache.delete(cache.keys().next().value);
    }
    return cache.get(f);
  }

  // ---- panels ---------------------------------------------------------------------------------------------------
  const [gridRows, gridCols] = M.grid, [W, Hgt] = M.size, cellW = W / gridCols, cellH = Hgt / gridRows;
  const TITLE = 18, aspect = (x1 - x0) / (y1 - y0);
  const mapW = Math.floor(Math.min(cellW - 8, (cellH - TITLE - 8) * aspect)), mapH = Math.floor(mapW / aspect);
  const container = $("tv-panels"), panels = [];
  container.style.gridTemplateColumns = `repeat(${gridCols}, ${cellW}px)`;
  container.style.gridAutoRows = `${cellH}px`;
  const K_MODES = M.centers.length;

  function dataCoordToPx(x, y) { return [(x - x0) / (x1 - x0) * mapW, (y1 - y) / (y1 - y0) * mapH]; }

  function makePanel(name) {
    const cell = document.createElement("div"), title = document.createElement("div");
    cell.className = "tv-panel"; title.className = "tv-title";
    cell.dataset.panel = name;
    cell.append(title);
    container.append(cell);
    const panel = {name, cell, title};
    if (name.startsWith("data") || name === "curves") {
      panel.plot = document.createElement("div");
      cell.append(panel.plot);
    } else {
      const box = document.createElement("div"), raster = document.createElement("canvas"),
        overlay = document.createElement("canvas");
      box.className = "tv-map"; raster.className = "tv-raster"; overlay.className = "tv-overlay";
      box.style.width = mapW + "px"; box.style.height = mapH + "px";
      raster.width = R; raster.height = R;
      const dpr = window.devicePixelRatio || 1;
      overlay.width = Math.round(mapW * dpr); overlay.height = Math.round(mapH * dpr);
      box.append(raster, overlay);
      cell.append(box);
      Object.assign(panel, {box, raster, overlay, dpr});
      box.addEventListener("mousemove", e => hover(panel, e));
      box.addEventListener("mouseleave", () => { $("tv-tooltip").style.display = "none"; });
    }
    panels.push(panel);
    return panel;
  }

  function panelTitle(p, fr) {              // frames.panel_title
    if (p.startsWith("data")) {
      const what = {"data:push": "data, G's push", "data:motion": "data, motion"}[p] || "data";
      return K_MODES ? `${what}: ${fr.meta.captured.reduce((a, b) => a + b, 0)}/${K_MODES} modes`
                     : `${what}: a point cloud`;
    }
    if (p.startsWith("regions") || p.startsWith("cumulative")) {
      const [l, cum] = regionPanel(p), n = (cum ? fr.cumCounts : fr.counts)[l];
      const name = cum && l ? `layers 1–${l + 1}` : `layer ${l + 1}`;     // frames.layers_name
      return `${name}: ${n} ${cum ? "regions" : "patterns"}`;
    }
    if (p === "prob") return M.probability ? "D(x) = P(real)" : "critic D(x)";
    if (p === "grad") return "∇ₓD";
    if (p === "mosaic") return "∇ₓD mosaic";
    return "curves";
  }

  function fakeOf(f) {
    const n = fields.fake.count;
    return fields.fake.data.subarray(f * n, (f + 1) * n);
  }

  function arrowsOn(ctx, starts, vecs, length, scale, color) {
    let m = 0;
    for (const v of vecs) m = Math.max(m, Math.hypot(v[0], v[1]));
    const k = m > 0 ? length / m : 0;
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1 * scale;
    for (let i = 0; i < starts.length; i++) {
      const [sx, sy] = dataCoordToPx(starts[i][0], starts[i][1]);
      const [ex, ey] = dataCoordToPx(starts[i][0] + vecs[i][0] * k, starts[i][1] + vecs[i][1] * k);
      const len = Math.hypot(ex - sx, ey - sy);
      if (!(len > 0.5)) continue;
      ctx.beginPath(); ctx.moveTo(sx * scale, sy * scale); ctx.lineTo(ex * scale, ey * scale); ctx.stroke();
      const a = Math.atan2(ey - sy, ex - sx), h = Math.min(4, len / 2) * scale;
      ctx.beginPath(); ctx.moveTo(ex * scale, ey * scale);
      ctx.lineTo(ex * scale - h * Math.cos(a - 0.45), ey * scale - h * Math.sin(a - 0.45));
      ctx.lineTo(ex * scale - h * Math.cos(a + 0.45), ey * scale - h * Math.sin(a + 0.45));
      ctx.closePath(); ctx.fill();
    }
  }

  function drawMap(panel, fr) {
    panel.raster.getContext("2d").putImageData(fr.images[panel.name], 0, 0);
    const ctx = panel.overlay.getContext("2d"), s = panel.dpr;
    ctx.clearRect(0, 0, panel.overlay.width, panel.overlay.height);
    if (panel.name.startsWith("regions") || panel.name.startsWith("cumulative")) {
      const fake = fakeOf(fr.index), r = Math.max(0.6, mapW / 400) * s;
      ctx.fillStyle = "rgba(0, 0, 0, 0.5)";
      for (let i = 0; i < fake.length; i += 2) {
        const [px, py] = dataCoordToPx(fake[i], fake[i + 1]);
        ctx.fillRect(px * s - r / 2, py * s - r / 2, r, r);
      }
    } else if (panel.name === "grad") {
      const a = fr.arrows;
      arrowsOn(ctx, a.pts, a.vec, 0.9 * a.step, s, "black");
    }
  }

  const plotConfig = {displaylogo: false, responsive: false, modeBarButtonsToRemove: ["select2d", "lasso2d"]};

  function plotText(s) {                    // a user string as plotly text (which reads a few HTML tags)
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function dataTraces(f, panelName) {
    const fake = fakeOf(f), fx = [], fy = [];
    for (let i = 0; i < fake.length; i += 2) { fx.push(fake[i]); fy.push(fake[i + 1]); }
    const cap = M.frames[f].captured, hit = [[], []], miss = [[], []];
    M.centers.forEach((c, k) => { const t = cap[k] ? hit : miss; t[0].push(c[0]); t[1].push(c[1]); });
    const traces = [
      {x: M.real.map(p => p[0]), y: M.real.map(p => p[1]), mode: "markers", type: "scatter", name: "real",
       marker: {size: 3, color: "#1f5fbf", opacity: 0.4}, hoverinfo: "skip"},
      {x: fx, y: fy, mode: "markers", type: "scatter", name: "fake", marker: {size: 3, color: "#d62728", opacity: 0.6},
       hovertemplate: "fake (%{x:.3f}, %{y:.3f})<extra></extra>"},
      {x: hit[0], y: hit[1], mode: "markers", type: "scatter", name: "captured",
       marker: {size: 12, symbol: "circle-open", color: "#2ca02c", line: {width: 2, color: "#2ca02c"}},
       hovertemplate: "captured mode (%{x:.2f}, %{y:.2f})<extra></extra>"},
      {x: miss[0], y: miss[1], mode: "markers", type: "scatter", name: "missed",
       marker: {size: 12, symbol: "x", color: "black", line: {width: 2, color: "black"}},
       hovertemplate: "missed mode (%{x:.2f}, %{y:.2f})<extra></extra>"},
    ];
    const kind = {"data:push": "push", "data:motion": "motion"}[panelName];
    if (kind && fields[kind]) {
      const n = fields[kind].count, v = fields[kind].data.subarray(f * n, (f + 1) * n), m = n / 2;
      let max = 0;
      for (let i = 0; i < m; i++) max = Math.max(max, Math.hypot(v[2 * i], v[2 * i + 1]));
      const k = max > 0 ? 0.08 * (x1 - x0) / max : 0, lx = [], ly = [];
      for (let i = 0; i < m; i++) {
        lx.push(fake[2 * i], fake[2 * i] + v[2 * i] * k, null);
        ly.push(fake[2 * i + 1], fake[2 * i + 1] + v[2 * i + 1] * k, null);
      }
      traces.push({x: lx, y: ly, mode: "lines", type: "scatter", name: kind, hoverinfo: "skip",
                   line: {color: "black", width: 1}});
    }
    return traces;
  }

  function dataLayout() {
    return {width: cellW, height: cellH - TITLE, margin: {l: 30, r: 8, t: 8, b: 24}, showlegend: false,
            plot_bgcolor: "white", xaxis: {range: [x0, x1], showgrid: false, zeroline: false, constrain: "domain"},
            yaxis: {range: [y0, y1], showgrid: false, zeroline: false, scaleanchor: "x", scaleratio: 1,
                    constrain: "domain"}};
  }

  function curvesSetup(panel) {
    // one y axis per group, top to bottom; the bottom group's axis is "y", which the shared x axis sits on
    const groups = M.curves, n = Math.max(1, groups.length), gap = 0.07, h = (1 - gap * (n - 1)) / n;
    const layout = {width: cellW, height: cellH - TITLE, margin: {l: 44, r: 8, t: 14, b: 24}, plot_bgcolor: "white",
                    showlegend: true, xaxis: {range: [0, M.total_steps], anchor: "y", tickfont: {size: 9}},
                    annotations: []};
    const traces = [];
    panel.curves = [];
    groups.forEach((g, i) => {
      const a = n - i, axis = a > 1 ? `yaxis${a}` : "yaxis", ref = a > 1 ? `y${a}` : "y", top = 1 - i * (h + gap);
      let lo = Infinity, hi = -Infinity;
      for (const s of g.series) for (const v of s.values) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      const pad = hi > lo ? 0.05 * (hi - lo) : 0.5;
      layout[axis] = {domain: [Math.max(0, top - h), top], anchor: "x", tickfont: {size: 9},
                      range: Number.isFinite(lo) ? [lo - pad, hi + pad] : [0, 1]};
      layout.annotations.push({text: plotText(g.title), xref: "paper", yref: "paper", x: 0, y: top,
                               showarrow: false, xanchor: "left", yanchor: "bottom", font: {size: 10}});
      const legend = i ? `legend${i + 1}` : "legend";      // each group's legend in its own corner, as the video
      layout[legend] = {x: 1, xanchor: "right", y: top, yanchor: "top", orientation: "h", font: {size: 8},
                        bgcolor: "rgba(255,255,255,0.6)", itemwidth: 30, tracegroupgap: 0};
      for (const s of g.series) {
        traces.push({x: [], y: [], type: "scatter", mode: "lines", name: plotText(s.label), yaxis: ref, legend,
                     line: {width: 1.5}, hovertemplate: "%{x}: %{y:.4g}"});
        panel.curves.push(s);
      }
    });
    Plotly.newPlot(panel.plot, traces, layout, plotConfig);
  }

  function curvesAt(panel, step) {
    const xsOut = [], ysOut = [];
    for (const s of panel.curves) {
      let n = 0;
      while (n < s.steps.length && s.steps[n] <= step) n++;
      xsOut.push(s.steps.slice(0, n)); ysOut.push(s.values.slice(0, n));
    }
    if (xsOut.length) Plotly.restyle(panel.plot, {x: xsOut, y: ysOut});
  }

  // ---- hover: a pixel's pattern bits and ∇ₓD, as the page's interactive panels -----------------------------------
  function fmt(v) {                          // like %.3g
    if (!Number.isFinite(v)) return String(v);
    if (v === 0) return "0";
    const e = Math.floor(Math.log10(Math.abs(v)));
    if (e < -4 || e >= 3) {
      const [m, x] = v.toExponential(2).split("e");
      return `${m.replace(/\.?0+$/, "")}e${x[0] === "-" ? "-" : "+"}${x.replace(/[-+]/, "").padStart(2, "0")}`;
    }
    return String(Number(v.toPrecision(3)));
  }

  function pixelInfo(f, row, col) {
    const x = xs[col], y = ys[row], info = K.pointInfo(netOf(f), x, y);
    return {x, y, row, col, ...info, prob: M.probability ? 1 / (1 + Math.exp(-info.logit)) : info.logit};
  }

  function hoverText(panel, info) {
    const lines = [`(${info.x.toFixed(3)}, ${info.y.toFixed(3)})`];
    let layers = null, name = "";
    if (panel.name === "mosaic" || panel.name === "regions" || panel.name.startsWith("cumulative")) {
      const [l] = panel.name === "mosaic" ? [depth - 1] : regionPanel(panel.name);
      layers = [...Array(l + 1).keys()]; name = l ? `h1–h${l + 1}` : "h1";
    } else if (panel.name.startsWith("regions:")) {
      const [l] = regionPanel(panel.name);
      layers = [l]; name = `h${l + 1}`;
    }
    if (layers) lines.push(`${name} bits ${layers.map(l => info.bits[l]).join(" | ")}`);
    lines.push(`∇ₓD = (${fmt(info.grad[0])}, ${fmt(info.grad[1])})`);
    lines.push(`D = ${info.prob.toFixed(3)}`);
    return lines.join("\n");
  }

  function hover(panel, e) {
    const rect = panel.box.getBoundingClientRect(), tip = $("tv-tooltip");
    const col = Math.min(R - 1, Math.max(0, Math.floor((e.clientX - rect.left) / rect.width * R)));
    const row = Math.min(R - 1, Math.max(0, Math.floor((e.clientY - rect.top) / rect.height * R)));
    if (!fields) return;
    tip.textContent = hoverText(panel, pixelInfo(current, row, col));
    tip.style.display = "block";
    tip.style.left = Math.min(e.clientX + 14, window.innerWidth - 540) + "px";
    tip.style.top = (e.clientY + 14) + "px";
  }

  // ---- showing a frame, playing -----------------------------------------------------------------------------------
  let current = 0, wanted = 0, playing = false, shownAt = 0;

  function header(fr) {                     // frames.header_text
    const m = fr.meta, modes = m.captured.reduce((a, b) => a + b, 0);
    let s = `${M.preset} · step ${m.step} · ` + (K_MODES
      ? `modes ${modes}/${K_MODES} · HQ ${Math.round(100 * m.hq)}% · reverse KL `
        + (m.rkl === null ? "undefined (no HQ sample)" : m.rkl.toFixed(2))     // frames.reverse_kl_text
      : "data: a point cloud (no modes)");
    if (fr.cumCounts) s += ` · ${fr.cumCounts[depth - 1]} regions`;
    return s;
  }

  function draw(fr) {
    for (const panel of panels) {
      panel.title.textContent = panelTitle(panel.name, fr);
      if (panel.raster) drawMap(panel, fr);
      else if (panel.name === "curves") curvesAt(panel, fr.meta.step);
      else Plotly.react(panel.plot, dataTraces(fr.index, panel.name), dataLayout(), plotConfig);
    }
    $("tv-header").textContent = header(fr);
    stepLabel.textContent = `step ${fr.meta.step} (${fr.index + 1}/${F})`;
    slider.value = String(fr.index);
    current = fr.index;
    shownAt = performance.now();
  }

  function prefetch(f) {
    for (let k = 1; k <= pool.size; k++) if (f + k < F) frame(f + k);
  }

  async function show(f) {
    wanted = f;
    if (!cache.has(f)) status.textContent = `computing step ${M.frames[f].step}…`;
    const fr = await frame(f);
    if (wanted !== f) return false;
    draw(fr);
    status.textContent = `${R}×${R} · ${(fr.ms / 1000).toFixed(2)} s to compute`;
    prefetch(f);
    return true;
  }

  function setPlaying(on) {
    playing = on;
    playButton.textContent = on ? "Pause" : "Play";
    if (on) tick();
  }

  async function tick() {
    if (!playing) return;
    if (current >= F - 1) { setPlaying(false); return; }
    const next = current + 1;
    const fr = await frame(next);
    if (!playing) return;
    const wait = Math.max(0, 1000 / M.fps - (performance.now() - shownAt));
    setTimeout(async () => {
      if (!playing) return;
      wanted = next;
      draw(fr);
      status.textContent = "playing";
      prefetch(next);
      tick();
    }, wait);
  }

  playButton.addEventListener("click", () => {
    if (playing) { setPlaying(false); return; }
    if (current >= F - 1) {
      show(0).then(() => setPlaying(true)).catch(fail);
    } else setPlaying(true);
  });
  slider.addEventListener("input", () => { setPlaying(false); show(Number(slider.value)).catch(fail); });

  // ---- start --------------------------------------------------------------------------------------------------------
  document.title = `toyviz · ${M.preset}`;
  $("tv-meta").textContent = `toyviz ${M.toyviz} · preset ${M.preset} · seed ${M.seed} · ${F} frames · D `
    + `${M.net.widths.join("×")} ${M.net.activation}\n` + JSON.stringify(M.config, null, 2);
  slider.max = String(F - 1);

  api.ready = (async () => {
    fields = await decode();
    pool = new Pool();
    for (const p of M.panels) makePanel(p);
    for (const panel of panels) {
      if (panel.name === "curves") curvesSetup(panel);
      else if (panel.plot) Plotly.newPlot(panel.plot, [], dataLayout(), plotConfig);
    }
    await show(0);
    playButton.disabled = false; slider.disabled = false;
    return true;
  })();
  api.ready.catch(fail);

  // what tests and scripts may ask of the page
  Object.assign(api, {
    frames: F, resolution: R, kernel: K, show, play: () => setPlaying(true), pause: () => setPlaying(false),
    get current() { return current; }, get playing() { return playing; },
    pixelInfo: (f, row, col) => pixelInfo(f, row, col),
    async raw(f) {                          // per layer counts, and RGB bytes (base64) of every region map
      await api.ready;
      const raw = await rawFrame(f, false), N = R * R, enc = a => {
        let s = "";
        for (let i = 0; i < a.length; i += 0x8000) s += String.fromCharCode.apply(null, a.subarray(i, i + 0x8000));
        return btoa(s);
      };
      const rgb = lo => {
        const img = new ImageData(R, R), out = new Uint8Array(3 * N);
        paintHashes(lo, img);
        for (let i = 0; i < N; i++) for (let c = 0; c < 3; c++) out[3 * i + c] = img.data[4 * i + c];
        return enc(out);
      };
      const logit = new Float32Array(raw.logit);
      return {counts: raw.layerHi.map((h, l) => countDistinct(h, raw.layerLo[l])),
              cumCounts: raw.cumHi.map((h, l) => countDistinct(h, raw.cumLo[l])),
              colors: raw.layerLo.map(rgb), cumColors: raw.cumLo.map(rgb),
              logit: enc(new Uint8Array(logit.buffer))};
    },
    arrows: f => gradArrows(netOf(f)),
  });
})();
