// @ts-check
/**
 * Open-loop load at a fixed rate: requests fall due on a schedule (one every 1/rate s) whatever
 * the answers do, go out over at most `connections` keep-alive connections, and each latency
 * counts from the moment its request was due. A request that waits for a free connection (the
 * server falling behind) waits on the clock, so queueing shows in the percentiles instead of
 * quietly lowering the rate (no coordinated omission).
 *
 * Why not autocannon's `overallRate`: autocannon 9 gives each connection a quota per second that
 * it sends back to back as soon as the second starts, then pauses, and its latency correction
 * uses a 1 ms "expected interval" (ceil(1/rate)) that adds made-up samples to the histogram.
 * Both skew p99.
 *
 * HTTP/1.1 over raw sockets with requests built once (as autocannon does), so that the generator
 * takes as little CPU from the servers as autocannon; bench/README.md says what node:http takes.
 */
import net from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

import { cpuPerRequest, readCpu } from './cpu.js';

/** How often the CPU timeline is read: the quarter seconds the worst windows are counted in. */
const WINDOW_MS = 250;

/**
 * @typedef {object} PacedRun
 * @property {number} targetRate requests/s asked for
 * @property {string} startedAt when the first request fell due (ISO 8601): worstWindows[].atSeconds count from it
 * @property {number} reqPerSec completed requests / the run's wall time (schedule and drain)
 * @property {number} sent
 * @property {number} total completed requests (any status)
 * @property {number} seconds the run's wall time
 * @property {number} p50Ms from the due time to the last byte of the answer
 * @property {number} p90Ms
 * @property {number} p99Ms
 * @property {number} p999Ms the 99.9th percentile
 * @property {number} maxMs
 * @property {number} sendDelayP99Ms from the due time to the write: the generator's timer, plus waiting for a free connection
 * @property {number} generatorLoopDelayP99Ms how late this process's event loop ran (p99): the generator's own share of any delay
 * @property {number} generatorLoopDelayMaxMs
 * @property {{ atSeconds: number, maxMs: number, cpuMs?: Record<string, number> }[]} worstWindows the five quarter seconds whose requests waited longest: one stall, or many; with `timeline` probes, the CPU each used in that quarter second and the one before (`cpuMs`, by probe: who was busy then)
 * @property {number} non2xx
 * @property {number} errors connection errors, timeouts included
 * @property {number} timeouts
 * @property {Record<string, number>} statusCodes
 * @property {{ status: number, body: string }[]} non2xxSamples first few non-2xx answers, verbatim
 * @property {number} generatorCpuPercent this process's CPU time during the run, % of one core
 */

/** @typedef {PacedRun & { warmup: { non2xx: number, errors: number, statusCodes: Record<string, number> }, cpuMsPerRequest: Record<string, number> | null }} PacedMeasured */

const TIMEOUT_MS = 10_000;
const CRLF2 = Buffer.from('\r\n\r\n');

/** @param {Float64Array} sorted @param {number} q */
const quantile = (sorted, q) => (sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0));

/**
 * The bytes of one request.
 * @param {import('autocannon').Request} request
 * @param {string} host
 */
function requestBytes(request, host) {
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body);
  const lines = [`${request.method ?? 'GET'} ${request.path ?? '/'} HTTP/1.1`, `host: ${host}`, 'connection: keep-alive'];
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    if (!/^(host|connection|content-length)$/iu.test(name)) lines.push(`${name}: ${value}`);
  }
  if (body.length > 0) lines.push(`content-length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]);
}

/**
 * Reads HTTP/1.1 answers off one connection: status, then a body framed by content-length or
 * chunked transfer coding. Resolves one answer at a time through `onAnswer`.
 */
class AnswerReader {
  /** @param {(status: number, body: Buffer) => void} onAnswer */
  constructor(onAnswer) {
    this.onAnswer = onAnswer;
    /** @type {Buffer} */
    this.buffer = Buffer.alloc(0);
  }

  /** @param {Buffer} chunk */
  push(chunk) {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const end = this.buffer.indexOf(CRLF2);
      if (end === -1) return;
      const head = this.buffer.subarray(0, end).toString('latin1');
      const status = Number(head.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/iu.exec(head);
      const start = end + 4;
      if (length !== null) {
        const stop = start + Number(length[1]);
        if (this.buffer.length < stop) return;
        const body = this.buffer.subarray(start, stop);
        this.buffer = this.buffer.subarray(stop);
        this.onAnswer(status, body);
      } else if (/\r\ntransfer-encoding:[^\r]*chunked/iu.test(head)) {
        /** @type {Buffer[]} */
        const parts = [];
        let at = start;
        for (;;) {
          const lineEnd = this.buffer.indexOf('\r\n', at);
          if (lineEnd === -1) return;
          const size = Number.parseInt(this.buffer.subarray(at, lineEnd).toString('latin1'), 16);
          if (Number.isNaN(size)) throw new Error('bad chunk size in an answer');
          if (size === 0) {
            // the last chunk, any trailer fields, then an empty line
            const trailerEnd = this.buffer.indexOf(CRLF2, lineEnd);
            if (trailerEnd === -1) return;
            at = trailerEnd + 4;
            break;
          }
          if (this.buffer.length < lineEnd + 2 + size + 2) return;
          parts.push(this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
          at = lineEnd + 2 + size + 2;
        }
        this.buffer = this.buffer.subarray(at);
        this.onAnswer(status, Buffer.concat(parts));
      } else if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
        this.buffer = this.buffer.subarray(start);
        if (status >= 200) this.onAnswer(status, Buffer.alloc(0));
      } else {
        throw new Error('an answer without content-length or chunked coding');
      }
    }
  }
}

/**
 * A keep-alive connection of a paced run.
 * @typedef {object} Connection
 * @property {net.Socket} socket
 * @property {number | null} dueAt the request in flight, by its due time
 * @property {number} writtenAt
 * @property {boolean} ready
 */

/** One paced run: its schedule, its connections and what they answered. */
class OpenLoop {
  /**
   * @param {import('./load.js').Workload} workload
   * @param {{ rate: number, seconds: number, connections: number }} shape
   */
  constructor(workload, shape) {
    const target = new URL(workload.url);
    if (target.hostname !== '127.0.0.1') throw new Error(`bench targets 127.0.0.1 only, not ${target.hostname}`);
    if (!(shape.rate > 0)) throw new Error(`a paced run needs a rate above 0 (got ${shape.rate})`);
    this.workload = workload;
    this.shape = shape;
    this.target = target;
    this.port = Number(target.port);
    this.count = Math.max(1, Math.round(shape.rate * shape.seconds));
    this.interval = 1000 / shape.rate;
    /** @type {import('autocannon').Request} */
    this.template = {
      method: workload.method ?? 'GET',
      path: `${target.pathname}${target.search}`,
      headers: workload.headers ?? {},
      ...(workload.body === undefined ? {} : { body: workload.body }),
    };
    this.fixed = workload.setupRequest === undefined ? requestBytes(this.template, target.host) : null;
    this.latencies = new Float64Array(this.count);
    this.delays = new Float64Array(this.count);
    /** the worst latency of the requests due in each quarter second of the run */
    this.worstByWindow = new Float64Array(Math.ceil(shape.seconds * 4) + 1);
    /** CPU ms of each timeline probe in each quarter second @type {Record<string, number>[]} */
    this.cpuByWindow = [];
    /** @type {Record<string, number>} */
    this.statusCodes = {};
    /** @type {{ status: number, body: string }[]} */
    this.samples = [];
    this.due = 0;
    this.sent = 0;
    this.completed = 0;
    this.failed = 0;
    this.timeouts = 0;
    this.non2xx = 0;
    /** due times of requests waiting for a free connection, oldest first @type {number[]} */
    this.waiting = [];
    /** @type {Connection[]} */
    this.connections = [];
    this.finished = false;
    /** when the first request falls due (performance.now()) */
    this.start = 0;
    /** @type {() => void} */
    this.done = () => undefined;
    this.allDone = new Promise((resolve) => {
      this.done = () => resolve(undefined);
    });
  }

  build() {
    if (this.fixed !== null) return this.fixed;
    const request = this.workload.setupRequest?.({ ...this.template, headers: { ...this.template.headers } }, {});
    if (!request) throw new Error('setupRequest returned no request');
    return requestBytes(request, this.target.host);
  }

  checkDone() {
    if (!this.finished && this.due >= this.count && this.waiting.length === 0 && this.connections.every((c) => c.dueAt === null)) {
      this.finished = true;
      this.done();
    }
  }

  /** @param {Connection} connection */
  send(connection) {
    const dueAt = this.waiting.shift();
    if (dueAt === undefined) return;
    connection.dueAt = dueAt;
    connection.writtenAt = performance.now();
    this.delays[this.sent] = connection.writtenAt - dueAt;
    this.sent += 1;
    connection.socket.write(this.build());
  }

  pump() {
    for (const connection of this.connections) {
      if (this.waiting.length === 0) return;
      if (connection.ready && connection.dueAt === null) this.send(connection);
    }
  }

  /** @param {Connection} connection @param {boolean} timedOut */
  lose(connection, timedOut) {
    if (connection.dueAt !== null) {
      this.failed += 1;
      if (timedOut) this.timeouts += 1;
      connection.dueAt = null;
    }
    connection.ready = false;
    connection.socket.destroy();
    // a new connection in its place, after a pause (a server that is gone must not make this spin)
    if (!this.finished) setTimeout(() => void (this.finished ? undefined : this.open(connection)), 50);
    this.checkDone();
  }

  /** @param {Connection} connection @param {number} status @param {Buffer} body */
  answered(connection, status, body) {
    const dueAt = connection.dueAt;
    if (dueAt === null) return;
    const latency = performance.now() - dueAt;
    this.latencies[this.completed] = latency;
    const window = Math.min(this.worstByWindow.length - 1, Math.max(0, Math.floor((dueAt - this.start) / WINDOW_MS)));
    if (latency > (this.worstByWindow[window] ?? 0)) this.worstByWindow[window] = latency;
    this.completed += 1;
    connection.dueAt = null;
    this.statusCodes[status] = (this.statusCodes[status] ?? 0) + 1;
    if (status < 200 || status > 299) {
      this.non2xx += 1;
      if (this.samples.length < 3) this.samples.push({ status, body: body.toString('utf8').slice(0, 500) });
    }
    if (this.workload.onResponse !== undefined) this.workload.onResponse(status, body.toString('utf8'));
    if (this.waiting.length > 0) this.send(connection);
    else this.checkDone();
  }

  /** @param {Connection} [reuse] @returns {Promise<void>} */
  open(reuse) {
    return new Promise((resolve) => {
      const socket = net.connect({ host: this.target.hostname, port: this.port, noDelay: true });
      /** @type {Connection} */
      const connection = reuse ?? { socket, dueAt: null, writtenAt: 0, ready: false };
      connection.socket = socket;
      const reader = new AnswerReader((status, body) => this.answered(connection, status, body));
      socket.on('connect', () => {
        connection.ready = true;
        resolve();
        this.pump();
      });
      socket.on('data', (/** @type {Buffer} */ chunk) => {
        try {
          reader.push(chunk);
        } catch {
          this.lose(connection, false);
        }
      });
      socket.on('error', () => undefined); // 'close' follows
      socket.on('close', () => {
        if (connection.socket !== socket) return;
        if (!connection.ready) resolve(); // never connected: counted when a request is lost
        this.lose(connection, false);
      });
      if (reuse === undefined) this.connections.push(connection);
    });
  }

  /** Every 500 ms: requests unanswered for TIMEOUT_MS are lost, and so are requests no connection could take. */
  expire() {
    const now = performance.now();
    for (const connection of this.connections) {
      if (connection.dueAt !== null && now - connection.writtenAt > TIMEOUT_MS) this.lose(connection, true);
    }
    // requests no connection could take (every connection lost): given up, like a timeout
    while (this.waiting.length > 0 && now - (this.waiting[0] ?? now) > TIMEOUT_MS) {
      this.waiting.shift();
      this.failed += 1;
      this.timeouts += 1;
    }
    this.checkDone();
  }

  /** Queues every request now due, sends what the free connections can take, and waits for the next due time. */
  tick() {
    const now = performance.now();
    while (this.due < this.count && this.start + this.due * this.interval <= now) {
      this.waiting.push(this.start + this.due * this.interval);
      this.due += 1;
    }
    this.pump();
    if (this.due < this.count) setTimeout(() => this.tick(), Math.max(0, this.start + this.due * this.interval - performance.now()));
    else this.checkDone();
  }

  /**
   * Reads the CPU of the workload's `timeline` probes every quarter second of the run into
   * `cpuByWindow` (what each used since the last reading, its processes summed): which process
   * was busy when the requests waited.
   */
  timeline() {
    const probes = this.workload.timeline ?? [];
    if (probes.length === 0) return { stop: () => undefined };
    let last = readCpu(probes);
    const timer = setInterval(() => {
      const now = readCpu(probes);
      if (now === null || last === null) return;
      const window = Math.floor((performance.now() - this.start) / WINDOW_MS) - 1;
      /** @type {Record<string, number>} */
      const used = {};
      for (const [name, pids] of Object.entries(now)) {
        let ms = 0;
        for (const [pid, total] of pids) ms += total - (last[name]?.get(pid) ?? total);
        used[name] = ms;
      }
      if (window >= 0) this.cpuByWindow[window] = used;
      last = now;
    }, WINDOW_MS);
    return { stop: () => clearInterval(timer) };
  }

  /** @returns {Promise<PacedRun>} */
  async run() {
    await Promise.all(Array.from({ length: this.shape.connections }, () => this.open()));
    const watchdog = setInterval(() => this.expire(), 500);
    const cpuBefore = process.cpuUsage();
    // how late this process's own event loop ran: a send delay it explains is the generator's, not the server's
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    loopDelay.enable();
    this.start = performance.now() + 2;
    const startedAt = new Date(Date.now() + 2).toISOString();
    setTimeout(() => this.tick(), 2);
    const timeline = this.timeline();
    await this.allDone;
    timeline.stop();
    const seconds = (performance.now() - this.start) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    loopDelay.disable();
    clearInterval(watchdog);
    for (const connection of this.connections) connection.socket.destroy();
    return this.result(startedAt, seconds, cpu, loopDelay);
  }

  /**
   * What the timeline probes used in quarter second `window` and the one before (a stall's cause
   * may start before the requests it delays fall due).
   * @param {number} window
   * @returns {{ cpuMs?: Record<string, number> }}
   */
  cpuAround(window) {
    const around = [this.cpuByWindow[window - 1], this.cpuByWindow[window]].filter((used) => used !== undefined);
    if (around.length === 0) return {};
    /** @type {Record<string, number>} */
    const cpuMs = {};
    for (const used of around) for (const [name, ms] of Object.entries(used)) cpuMs[name] = Math.round((cpuMs[name] ?? 0) + ms);
    return { cpuMs };
  }

  /**
   * @param {string} startedAt
   * @param {number} seconds
   * @param {NodeJS.CpuUsage} cpu
   * @param {import('node:perf_hooks').IntervalHistogram} loopDelay
   * @returns {PacedRun}
   */
  result(startedAt, seconds, cpu, loopDelay) {
    const answered = this.latencies.subarray(0, this.completed).sort();
    const delayed = this.delays.subarray(0, this.sent).sort();
    return {
      targetRate: this.shape.rate,
      startedAt,
      reqPerSec: this.completed / seconds,
      sent: this.sent,
      total: this.completed,
      seconds,
      p50Ms: quantile(answered, 0.5),
      p90Ms: quantile(answered, 0.9),
      p99Ms: quantile(answered, 0.99),
      p999Ms: quantile(answered, 0.999),
      maxMs: answered.length === 0 ? 0 : (answered[answered.length - 1] ?? 0),
      sendDelayP99Ms: quantile(delayed, 0.99),
      generatorLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      generatorLoopDelayMaxMs: loopDelay.max / 1e6,
      worstWindows: [...this.worstByWindow]
        .map((maxMs, i) => ({ atSeconds: i / 4, maxMs, ...this.cpuAround(i) }))
        .sort((a, b) => b.maxMs - a.maxMs)
        .slice(0, 5),
      non2xx: this.non2xx,
      errors: this.failed,
      timeouts: this.timeouts,
      statusCodes: this.statusCodes,
      non2xxSamples: this.samples,
      generatorCpuPercent: ((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100,
    };
  }
}

/**
 * One run at `rate` requests/s for `seconds`.
 * @param {import('./load.js').Workload} workload
 * @param {{ rate: number, seconds: number, connections: number }} shape
 * @returns {Promise<PacedRun>}
 */
export async function pacedRun(workload, shape) {
  return new OpenLoop(workload, shape).run();
}

/**
 * A warm-up run at the same rate (its figures kept apart, its non-2xx still reported), then the
 * measured run.
 * @param {import('./load.js').Workload} workload
 * @param {{ rate: number, seconds: number, warmupSeconds: number, connections: number }} shape
 * @returns {Promise<PacedMeasured>}
 */
export async function measureAtRate(workload, shape) {
  const warm = await pacedRun(workload, { rate: shape.rate, seconds: shape.warmupSeconds, connections: shape.connections });
  const cpuBefore = readCpu(workload.cpu ?? []);
  const result = await pacedRun(workload, { rate: shape.rate, seconds: shape.seconds, connections: shape.connections });
  const cpuMsPerRequest = cpuPerRequest(cpuBefore, readCpu(workload.cpu ?? []), result.total);
  return { ...result, warmup: { non2xx: warm.non2xx, errors: warm.errors, statusCodes: warm.statusCodes }, cpuMsPerRequest };
}
