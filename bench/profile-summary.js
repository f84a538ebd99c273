// @ts-check
/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as written by `node --cpu-prof` and by
 * `npm run bench -- --profile`): where the time went, by package and by function (self time),
 * plus the inclusive time of frames whose name matches --focus.
 *
 *   node bench/profile-summary.js <file-or-dir>... [--top 25] [--focus regexp]
 *
 * Several profiles (e.g. one per cluster worker) are added together.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: flags, positionals } = parseArgs({
  options: { top: { type: 'string', default: '25' }, focus: { type: 'string' } },
  allowPositionals: true,
  strict: true,
});
const top = Number(flags.top);
if (positionals.length === 0 || !Number.isInteger(top) || top < 1) {
  process.stderr.write('usage: node bench/profile-summary.js <file-or-dir>... [--top N] [--focus regexp]\n');
  process.exit(2);
}
const focus = flags.focus === undefined ? null : new RegExp(flags.focus, 'u');

/**
 * @typedef {object} ProfileNode
 * @property {number} id
 * @property {{ functionName: string, url: string, lineNumber: number }} callFrame
 * @property {number[]} [children]
 */
/** @typedef {{ nodes: ProfileNode[], samples: number[], timeDeltas: number[] }} Profile */

/** @param {string} target @returns {string[]} */
const files = (target) =>
  statSync(target).isDirectory()
    ? readdirSync(target)
        .filter((name) => name.endsWith('.cpuprofile'))
        .map((name) => path.join(target, name))
    : [target];

/** Where a frame's code lives: a package under node_modules, a file of this repository, node itself, or V8. */
function owner(/** @type {string} */ url, /** @type {string} */ name) {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return 'node';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules !== -1) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? url);
  }
  const services = url.indexOf('/services/');
  if (services !== -1) return url.slice(services + 1).split('/').slice(0, 2).join('/');
  return url;
}

/** @type {Map<string, number>} */
const byPackage = new Map();
/** @type {Map<string, number>} */
const byFunction = new Map();
/** @type {Map<string, number>} */
const focused = new Map();
let total = 0;
let idle = 0;

for (const file of positionals.flatMap(files)) {
  /** @type {Profile} */
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  /** @type {Map<number, ProfileNode>} */
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  /** @type {Map<number, number>} */
  const parents = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  profile.samples.forEach((id, index) => {
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    const node = nodes.get(id);
    if (node === undefined) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += ms;
      return;
    }
    total += ms;
    const pkg = owner(url, functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + ms);
    const label = `${functionName || '(anonymous)'} ${pkg}${url === '' ? '' : `:${path.basename(url)}:${lineNumber + 1}`}`;
    byFunction.set(label, (byFunction.get(label) ?? 0) + ms);
    if (focus !== null) {
      // inclusive: every distinct matching frame on the stack is charged once
      /** @type {Set<string>} */
      const seen = new Set();
      for (let at = /** @type {number | undefined} */ (id); at !== undefined; at = parents.get(at)) {
        const frame = nodes.get(at)?.callFrame;
        if (frame === undefined) break;
        const name = `${frame.functionName || '(anonymous)'} ${owner(frame.url, frame.functionName)}:${path.basename(frame.url)}:${frame.lineNumber + 1}`;
        if (focus.test(name) && !seen.has(name)) {
          seen.add(name);
          focused.set(name, (focused.get(name) ?? 0) + ms);
        }
      }
    }
  });
}

const percent = (/** @type {number} */ ms) => `${((100 * ms) / (total || 1)).toFixed(1).padStart(5)} %`;
/** @param {string} title @param {Map<string, number>} map */
function print(title, map) {
  process.stdout.write(`\n${title}\n`);
  for (const [name, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${percent(ms)}  ${Math.round(ms).toString().padStart(7)} ms  ${name}\n`);
}
process.stdout.write(`busy ${Math.round(total)} ms, idle ${Math.round(idle)} ms\n`);
print('self time by package', byPackage);
print('self time by function', byFunction);
if (focus !== null) print(`inclusive time of frames matching /${focus.source}/`, focused);
