#!/usr/bin/env node
// The viking CLI, compiled by `npm run build` into dist/.
import '../dist/lib/cli/main.js';
