// The phone page: runs each artifact edgecompress hands it in this browser's own runtimes and
// posts the raw figures back. LiteRT.js runs .tflite, ONNX Runtime Web runs .onnx; each tries
// WebGPU first, then WebAssembly (threaded where the page is cross-origin isolated).
// Nothing is summarised here: the host checks every raw output and timing and scores them itself.

const PAGE_VERSION = "1";
const ASSETS = "./assets/";
const PROGRESS_EVERY_MS = 1000;
// a latency sample shorter than this is timed over several back-to-back inferences
const MIN_SAMPLE_MS = 1.0;

const state = document.getElementById("state");
const logBox = document.getElementById("log");
let session = null;

function show(text) { state.textContent = text; }
function log(text) { logBox.textContent += text + "\n"; }

async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  return {status: response.status, body: await response.json().catch(() => ({}))};
}

async function describe() {
  const device = {
    user_agent: navigator.userAgent,
    platform: navigator.platform,
    hardware_concurrency: navigator.hardwareConcurrency || null,
    device_memory_gb: navigator.deviceMemory || null,
    cross_origin_isolated: self.crossOriginIsolated === true,
    secure_context: self.isSecureContext === true,
    webgpu: {error: "navigator.gpu is not available (needs a secure context and a browser with WebGPU)"},
  };
  if (navigator.userAgentData) {
    const brands = navigator.userAgentData.brands.filter((b) => !/not.?a.?brand/i.test(b.brand));
    device.browser = brands.map((b) => `${b.brand} ${b.version}`).join(", ");
    try {
      device.ua_data = await navigator.userAgentData.getHighEntropyValues(
        ["model", "platform", "platformVersion", "architecture", "mobile"]);
    } catch (e) { device.ua_data = {platform: navigator.userAgentData.platform}; }
  }
  if (navigator.gpu) {
    try {
      const adapter = await navigator.gpu.requestAdapter();
      device.webgpu = adapter ? {...pick(adapter.info || {})} : {error: "no WebGPU adapter"};
    } catch (e) { device.webgpu = {error: String(e)}; }
  }
  return device;
}

function pick(info) {
  return {vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description};
}

// ---------------------------------------------------------------------------- runtimes

// Each runtime: import (once), then compile a model for one backend; `load` below tries the
// backends in order and keeps the first that compiles *and* runs the first image.
const runtimes = {
  litert: {
    module: null,
    async init(threads) {
      this.module = await import(ASSETS + "litertjs-core/dist/index.js");
      await this.module.loadLiteRt(ASSETS + "litertjs-core/wasm/", {threads: threads > 1});
    },
    available(backend) { return backend !== "webgpu" || this.module.isWebGPUSupported(); },
    async compile(bytes, backend, threads) {
      const lib = this.module;
      const options = {accelerator: backend};
      if (backend === "wasm") options.cpuOptions = {numThreads: threads};
      const model = await lib.loadAndCompile(bytes.slice(), options);
      const input = model.getInputDetails()[0];
      if (input.dtype !== "float32") {
        model.delete();
        throw new Error(`the model's input is ${input.dtype}; the page feeds float32 images`);
      }
      const shape = Array.from(input.shape);
      return {
        threads: backend === "wasm" ? threads : 1,
        async run(sample) {
          const tensor = new lib.Tensor(sample, shape);
          const results = await model.run(tensor);
          tensor.delete();
          let out = results[0];
          if (out.accelerator !== "wasm") out = await out.moveTo("wasm");
          const values = Float32Array.from(out.toTypedArray());
          out.delete();
          return values;
        },
        close() { model.delete(); },
      };
    },
  },
  ort: {
    module: null,
    async init(threads) {
      this.module = await import(ASSETS + "onnxruntime-web/dist/ort.webgpu.min.mjs");
      this.module.env.wasm.wasmPaths = new URL(ASSETS + "onnxruntime-web/dist/", location.href).href;
      this.module.env.wasm.numThreads = threads;
    },
    available(backend) { return backend !== "webgpu" || Boolean(navigator.gpu); },
    async compile(bytes, backend) {
      const ort = this.module;
      const model = await ort.InferenceSession.create(bytes.slice(), {executionProviders: [backend]});
      const [inputName] = model.inputNames;
      const [outputName] = model.outputNames;
      return {
        threads: backend === "wasm" ? ort.env.wasm.numThreads : 1,
        async run(sample, shape) {
          const results = await model.run({[inputName]: new ort.Tensor("float32", sample, shape)});
          const out = results[outputName];
          const values = Float32Array.from(await out.getData());
          out.dispose();
          return values;
        },
        close() { model.release(); },
      };
    },
  },
};

async function load(runtime, bytes, threads, attempts, first, shape) {
  let importMs = 0;
  if (!runtime.module) {
    const started = performance.now();
    await runtime.init(threads);
    importMs = performance.now() - started;
  }
  for (const backend of ["webgpu", "wasm"]) {
    if (!runtime.available(backend)) {
      attempts.push({backend, error: "not available in this page"});
      continue;
    }
    let runner = null;
    try {
      const t0 = performance.now();
      runner = await runtime.compile(bytes, backend, threads);
      const loadMs = performance.now() - t0;
      const t1 = performance.now();
      await runner.run(first, shape);
      return {...runner, backend, importMs, loadMs, firstMs: performance.now() - t1};
    } catch (e) {
      if (runner) runner.close();
      attempts.push({backend, error: String(e && e.message || e)});
    }
  }
  throw new Error(attempts.map((a) => `${a.backend}: ${a.error}`).join("; "));
}

// ---------------------------------------------------------------------------- one job

function timerResolution() {
  let smallest = Infinity;
  for (let i = 0; i < 50; i++) {
    const a = performance.now();
    let b = performance.now();
    while (b === a) b = performance.now();
    smallest = Math.min(smallest, b - a);
  }
  return smallest;
}

// Back-to-back inferences per latency sample, so that the shortest sample spans at least
// MIN_SAMPLE_MS and 100 ticks of this page's timer (0.1 ms outside cross-origin isolation).
async function calibrate(runner, sample, shape, job, resolution) {
  let fastest = Infinity;
  for (let i = 0; i < 10; i++) {
    const start = performance.now();
    await runner.run(sample(i % job.latency_inputs), shape);
    fastest = Math.min(fastest, performance.now() - start);
  }
  const span = Math.max(MIN_SAMPLE_MS, 100 * resolution);
  return Math.max(1, Math.min(100000, Math.ceil(span / Math.max(fastest, resolution / 2))));
}

async function sha256(bytes) {
  if (!(self.crypto && crypto.subtle)) return null;  // no WebCrypto outside a secure context
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

function chooseThreads(job) {
  const cpus = navigator.hardwareConcurrency || 1;
  if (!self.crossOriginIsolated) {
    return [1, "1: the page is not cross-origin isolated, so the browser allows no WebAssembly threads"];
  }
  const wanted = job.threads || cpus;
  if (wanted > cpus) return [cpus, `${job.threads_basis}, capped at the ${cpus} CPUs the browser reports`];
  return [wanted, job.threads_basis];
}

async function fetchBytes(job, name) {
  const response = await fetch(`./job/${job.id}/${name}?session=${session}`);
  if (!response.ok) throw new Error(`fetching ${name}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function runJob(job) {
  const progress = makeProgress();
  const model = await fetchBytes(job, "model");
  const inputs = new Float32Array((await fetchBytes(job, "inputs")).buffer);
  const size = job.shape.reduce((a, b) => a * b, 1);
  const shape = [1, ...job.shape];
  const sample = (i) => inputs.subarray(i * size, (i + 1) * size);
  const [threads, threadsBasis] = chooseThreads(job);
  const attempts = [];
  await progress(`loading ${job.model}`, true);
  const runner = await load(runtimes[job.runtime], model, threads, attempts, sample(0), shape);
  try {
    const resolution = timerResolution();
    for (let i = 0; i < job.warmup; i++) await runner.run(sample((1 + i) % job.latency_inputs), shape);
    const repeats = await calibrate(runner, sample, shape, job, resolution);
    await progress(`warm-up ${job.warmup}, timed runs ${job.runs}` + (repeats > 1 ? ` (${repeats} inferences each)` : ""), true);
    const samples = [];
    for (let r = 0; r < job.runs; r++) {
      const start = performance.now();
      for (let k = 0; k < repeats; k++) {
        await runner.run(sample((1 + job.warmup + r * repeats + k) % job.latency_inputs), shape);
      }
      samples.push((performance.now() - start) / repeats);
      await progress(`timed run ${r + 1}/${job.runs}`);
    }
    const outputs = [];
    for (let i = 0; i < job.n; i++) {
      outputs.push(Array.from(await runner.run(sample(i), shape)));
      await progress(`evaluated ${i + 1}/${job.n} images`);
    }
    return {
      page_version: PAGE_VERSION, backend: runner.backend, attempts, threads: runner.threads,
      threads_basis: runner.backend === "wasm" ? threadsBasis : "the GPU (WebGPU)",
      simd: runner.backend === "wasm" ? await simdSupported() : null,
      wasm_file: loadedWasm(job.runtime), cross_origin_isolated: self.crossOriginIsolated === true,
      timer_resolution_ms: resolution, inferences_per_sample: repeats,
      import_ms: runner.importMs, load_ms: runner.loadMs, first_inference_ms: runner.firstMs,
      warmup: job.warmup, latency_samples_ms: samples, outputs,
      model_bytes: model.byteLength, model_sha256: await sha256(model),
    };
  } finally {
    runner.close();
  }
}

async function simdSupported() {
  // the smallest module using a v128 value: browsers without SIMD refuse to compile it
  const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0,
    65, 0, 253, 15, 253, 98, 11]);
  return WebAssembly.validate(bytes);
}

function loadedWasm(runtime) {
  const prefix = runtime === "litert" ? "litert_wasm" : "ort-wasm";
  const names = performance.getEntriesByType("resource").map((e) => e.name.split("/").pop())
    .filter((name) => name.startsWith(prefix) && name.endsWith(".wasm"));
  return names.length ? names[names.length - 1] : null;
}

function makeProgress() {
  let last = 0;
  return async (message, always = false) => {
    const now = performance.now();
    if (!always && now - last < PROGRESS_EVERY_MS) return;
    last = now;
    show(message);
    const answer = await postJson(`./progress?session=${session}`, {message});
    if (answer.status !== 200) throw new Taken(answer.body.taken || "This page no longer owns the run.");
  };
}

class Taken extends Error {}

// ---------------------------------------------------------------------------- the loop

async function main() {
  show("Describing this browser…");
  const hello = await postJson("./hello", await describe());
  if (hello.status !== 200) {
    show(hello.body.taken || `The host refused this page (HTTP ${hello.status}).`);
    return;
  }
  session = hello.body.session;
  addEventListener("pagehide", () => navigator.sendBeacon(`./bye?session=${session}`));
  show("Connected. Waiting for the first artifact (the host may still be compressing)…");
  for (;;) {
    const response = await fetch(`./job?session=${session}`);
    const answer = await response.json().catch(() => ({}));
    if (response.status !== 200) { show(answer.taken || `The host stopped answering (HTTP ${response.status}).`); return; }
    if (!answer.job) continue;
    const job = answer.job;
    log(`${job.model}: measuring`);
    let result;
    try {
      result = await runJob(job);
      log(`${job.model}: ${result.backend}, ${result.threads} thread(s), done`);
    } catch (e) {
      if (e instanceof Taken) { show(e.message); return; }
      console.error(e && e.stack || String(e));
      result = {error: String(e && e.message || e)};
      log(`${job.model}: ${result.error}`);
    }
    await postJson(`./result/${job.id}?session=${session}`, result);
    show("Sent. Waiting for the next artifact…");
  }
}

main().catch((e) => show(`The host closed the link (the run ended or stopped; see the terminal): ${e && e.message || e}`));
