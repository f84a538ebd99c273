#!/usr/bin/env node
// A command lives a second or two: the embedded database's WebAssembly (PGlite) runs on V8's
// baseline compiler alone, which compiles it at once, instead of also optimising it on other
// threads for a process that exits before that pays (about 40 % of a command's CPU on the
// embedded database). The server (dist/main.js) keeps V8's default.
import v8 from 'node:v8';

v8.setFlagsFromString('--liftoff-only');
await import('../dist/cli/sigil.js');
