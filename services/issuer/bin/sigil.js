#!/usr/bin/env node
import '../dist/cli/sigil.js';
