#!/usr/bin/env node
// The `tensornormal` command (package.json "bin"): see lib/experiments/cli.ts.
import { main } from './experiments/cli.js';

process.exitCode = await main(process.argv.slice(2));
