#!/usr/bin/env node
// Runs the compiled CLI (npm install builds dist/ through the prepare script).
import { main } from '../dist/daemon/cli/main.js';
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
