// @ts-check
/**
 * CPU time spent by processes, read from Linux's /proc: what a server costs per request,
 * whatever else shares the cores (throughput ratios move with the load generator and the
 * database on the same two cores; CPU per request much less).
 *
 * Elsewhere than Linux every reading is `null`, and the figures are left out.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc counts CPU time in ticks of 1/100 s on every architecture Node runs on. */
const MS_PER_TICK = 10;

/**
 * @typedef {object} ProcStat
 * @property {number} pid
 * @property {string} comm the executable's name
 * @property {number} pgrp process group
 * @property {number} cpuMs user + system time so far
 */

/**
 * `/proc/<pid>/stat` of every live process (those that vanish while being read are skipped).
 * @returns {ProcStat[] | null} null where there is no /proc
 */
function processes() {
  let pids;
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/u.test(name));
  } catch {
    return null;
  }
  /** @type {ProcStat[]} */
  const stats = [];
  for (const pid of pids) {
    let line;
    try {
      line = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    stats.push(parseStat(Number(pid), line));
  }
  return stats;
}

/**
 * One line of /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat).
 * @param {number} pid
 * @param {string} line
 * @returns {ProcStat}
 */
function parseStat(pid, line) {
  // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ')'
  const close = line.lastIndexOf(')');
  const fields = line.slice(close + 2).split(' ');
  // after comm: state(0) ppid(1) pgrp(2) … utime(11) stime(12), in ticks
  return { pid, comm: line.slice(line.indexOf('(') + 1, close), pgrp: Number(fields[2]), cpuMs: (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK };
}

/**
 * CPU milliseconds so far of the main threads and of the other threads (libuv's pool, V8's
 * helpers) of the processes `probe` takes in, from /proc/<pid>/task; null where there is no /proc.
 * @param {CpuProbe} probe
 * @returns {{ main: number, other: number } | null}
 */
export function readThreadCpu(probe) {
  const stats = processes();
  if (stats === null) return null;
  let main = 0;
  let other = 0;
  for (const stat of stats.filter((each) => probe.includes(each))) {
    let tids;
    try {
      tids = readdirSync(`/proc/${stat.pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let line;
      try {
        line = readFileSync(`/proc/${stat.pid}/task/${tid}/stat`, 'utf8');
      } catch {
        continue;
      }
      const { cpuMs } = parseStat(Number(tid), line);
      if (Number(tid) === stat.pid) main += cpuMs;
      else other += cpuMs;
    }
  }
  return { main, other };
}

/**
 * A named set of processes whose CPU time can be read, e.g. a server's process group (a
 * cluster primary and its workers) or every `postgres` process.
 * @typedef {object} CpuProbe
 * @property {string} name
 * @property {(stat: ProcStat) => boolean} includes
 */

/**
 * The processes of the group led by `pid` (the bench starts every server detached, in a group of its own).
 * @param {string} name
 * @param {number} pid
 * @returns {CpuProbe}
 */
export const processGroup = (name, pid) => ({ name, includes: (stat) => stat.pgrp === pid });

/**
 * Every process running the executable `comm` (PostgreSQL's backends are all `postgres`).
 * @param {string} name
 * @param {string} comm
 * @returns {CpuProbe}
 */
export const byCommand = (name, comm) => ({ name, includes: (stat) => stat.comm === comm });

/**
 * CPU milliseconds so far of each probe's processes, by pid, and of this process (the load generator).
 * @typedef {Record<string, Map<number, number>>} CpuReading
 */

/**
 * @param {CpuProbe[]} probes
 * @returns {CpuReading | null}
 */
export function readCpu(probes) {
  const stats = processes();
  if (stats === null) return null;
  const usage = process.cpuUsage();
  /** @type {CpuReading} */
  const reading = { loadGenerator: new Map([[process.pid, (usage.user + usage.system) / 1000]]) };
  for (const probe of probes) reading[probe.name] = new Map(stats.filter((stat) => probe.includes(stat)).map((stat) => [stat.pid, stat.cpuMs]));
  return reading;
}

/**
 * CPU milliseconds per request of each probe between two readings: what its processes alive
 * at the end used since the start (or since they started). A process that ended in between
 * is left out, its time unknown (a PostgreSQL backend whose client disconnected, say).
 * @param {CpuReading | null} before
 * @param {CpuReading | null} after
 * @param {number} requests
 * @returns {Record<string, number> | null}
 */
export function cpuPerRequest(before, after, requests) {
  if (before === null || after === null || !(requests > 0)) return null;
  return Object.fromEntries(
    Object.entries(after).map(([name, pids]) => {
      let used = 0;
      for (const [pid, ms] of pids) used += ms - (before[name]?.get(pid) ?? 0);
      return [name, used / requests];
    }),
  );
}
