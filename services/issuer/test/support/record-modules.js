// @ts-check
/*
 * Preloaded (`node --import`) into an issuer process by a test: appends the URL of every
 * module the process imports to the file named by SIGIL_TEST_MODULES_FILE, one a line, so the
 * test can tell which packages were loaded at all.
 */
import { register } from 'node:module';

register('./record-modules-hooks.js', import.meta.url, { data: { file: process.env['SIGIL_TEST_MODULES_FILE'] } });
