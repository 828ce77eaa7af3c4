// Summarizes a conformance run written by scripts/conformance.sh: one line per
// scenario (pass/fail, the suite's check counts, and for a failure the suite's
// own reason), totals, summary.md and summary.json in the results folder.
// Exits 1 when a required scenario (parts "server" and "client") failed;
// the "draft" part is informational.
//
// Usage: node summarize.js RESULTS_DIR [ELAPSED_SECONDS] [RESULTS_DIR_AS_SHOWN]
'use strict';

const fs = require('fs');
const path = require('path');

const PARTS = ['server', 'client', 'draft'];
const REQUIRED = new Set(['server', 'client']);
const MAX_REASON = 400;

function main() {
  const out = process.argv[2];
  const elapsed = Number(process.argv[3] || 0);
  const shown = process.argv[4] || out;
  if (!out) {
    console.error('usage: node summarize.js RESULTS_DIR [ELAPSED_SECONDS]');
    process.exit(2);
  }
  // order: one "part<TAB>folder" line per scenario, in the order the script
  // started them.
  const rows = readText(path.join(out, 'order'))
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [part, dir] = line.split('\t');
      return summarizeScenario(part, dir);
    });
  printText(rows, elapsed, shown);
  fs.writeFileSync(path.join(out, 'summary.md'), markdown(rows, elapsed));
  fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify({ elapsedSeconds: elapsed, scenarios: rows }, null, 2) + '\n');
  const requiredFailed = rows.filter((r) => REQUIRED.has(r.part) && !r.passed);
  process.exit(requiredFailed.length > 0 || rows.length === 0 ? 1 : 0);
}

function summarizeScenario(part, dir) {
  const run = readRun(dir);
  const checks = readChecks(path.join(dir, 'results'));
  const count = (status) => checks.filter((c) => c.status === status).length;
  const row = {
    part,
    scenario: run.scenario || path.basename(dir),
    exitCode: run.exitCode,
    seconds: run.seconds,
    passedChecks: count('SUCCESS'),
    failedChecks: count('FAILURE'),
    warnings: count('WARNING'),
    reasons: [],
    dir: path.relative(process.cwd(), dir),
  };
  for (const c of checks) {
    if (c.status === 'FAILURE' || c.status === 'WARNING') {
      row.reasons.push(`${c.status === 'WARNING' ? 'warning ' : ''}[${c.id}] ${clip(c.errorMessage || c.description || '')}`);
    }
  }
  if (row.exitCode === null) row.reasons.push('did not finish (no exit status recorded)');
  else if (row.exitCode !== 0) row.reasons.push(...exitReasons(dir, row.exitCode));
  if (row.passedChecks === 0 && row.failedChecks === 0) {
    row.reasons.push('no check passed: the suite observed nothing it could verify');
  }
  // The suite's own verdict for one scenario (exit 0), plus at least one
  // passing check: a client that exits 0 without connecting makes no check
  // fail in some scenarios (initialize), and must not count as a pass.
  row.passed = row.exitCode === 0 && row.failedChecks === 0 && row.passedChecks > 0;
  return row;
}

function readRun(dir) {
  try {
    const [part, scenario, code, , seconds] = fs.readFileSync(path.join(dir, 'run.tsv'), 'utf8').trim().split('\t');
    return { part, scenario, exitCode: Number(code), seconds: Number(seconds) };
  } catch {
    return { exitCode: null, seconds: null };
  }
}

function readChecks(resultsDir) {
  const files = findFiles(resultsDir, 'checks.json');
  const checks = [];
  for (const f of files) {
    try {
      checks.push(...JSON.parse(fs.readFileSync(f, 'utf8')));
    } catch (err) {
      checks.push({ id: 'checks.json', status: 'FAILURE', errorMessage: `unreadable ${f}: ${err.message}` });
    }
  }
  return checks;
}

function findFiles(dir, name) {
  if (!fs.existsSync(dir)) return [];
  const found = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) found.push(...findFiles(p, name));
    else if (e.name === name) found.push(p);
  }
  return found;
}

// exitReasons explains a non-zero exit from the suite's log: a timeout, the
// client's own exit status and last stderr line, or the outer time limit.
function exitReasons(dir, code) {
  const reasons = [];
  const runLog = readText(path.join(dir, 'run.log'));
  if (code === 124 || code === 137) reasons.push(`killed by the script's outer time limit (exit ${code})`);
  const timedOut = runLog.match(/Client timed out after \d+ms/);
  if (timedOut) reasons.push(timedOut[0]);
  const exited = runLog.match(/Client exited with code (-?\d+)/);
  if (exited) {
    const stderr = findFiles(path.join(dir, 'results'), 'stderr.txt').map(readText).join('\n');
    const last = stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop();
    reasons.push(`client exited with code ${exited[1]}${last ? `: ${clip(last)}` : ''}`);
  }
  const crash = runLog.match(/(Client test error|Failed to run scenario|Validation error)[^\n]*/);
  if (crash) reasons.push(clip(crash[0]));
  return reasons;
}

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function clip(s) {
  const one = String(s).replace(/\s+/g, ' ').trim();
  return one.length > MAX_REASON ? one.slice(0, MAX_REASON) + '…' : one;
}

function totals(rows, part) {
  const r = rows.filter((x) => x.part === part);
  return { passed: r.filter((x) => x.passed).length, total: r.length };
}

function printText(rows, elapsed, shown) {
  console.log('\n=== MCP conformance summary ===');
  for (const r of rows) {
    const mark = r.passed ? 'PASS' : 'FAIL';
    const counts = `${r.passedChecks} passed, ${r.failedChecks} failed${r.warnings ? `, ${r.warnings} warnings` : ''}`;
    console.log(`${mark}  ${r.part.padEnd(6)} ${r.scenario.padEnd(40)} ${counts} (${r.seconds ?? '?'}s)`);
    if (!r.passed || r.warnings) for (const reason of r.reasons) console.log(`        - ${reason}`);
  }
  console.log('');
  for (const part of PARTS) {
    const t = totals(rows, part);
    if (t.total === 0) continue;
    console.log(`${part.padEnd(6)} ${t.passed}/${t.total} passed${REQUIRED.has(part) ? '' : ' (informational)'}`);
  }
  const req = rows.filter((r) => REQUIRED.has(r.part));
  const reqPassed = req.filter((r) => r.passed).length;
  console.log(`required: ${reqPassed}/${req.length} passed in ${elapsed}s; details in ${shown}/`);
}

function markdown(rows, elapsed) {
  const lines = ['| part | scenario | result | checks passed/failed | reason (from the suite) |', '| --- | --- | --- | --- | --- |'];
  for (const r of rows) {
    const reason = r.passed ? (r.warnings ? r.reasons.join('; ') : '') : r.reasons.join('; ');
    lines.push(`| ${r.part} | \`${r.scenario}\` | ${r.passed ? 'pass' : '**fail**'} | ${r.passedChecks}/${r.failedChecks} | ${reason.replace(/\|/g, '\\|')} |`);
  }
  lines.push('');
  for (const part of PARTS) {
    const t = totals(rows, part);
    if (t.total) lines.push(`- ${part}: ${t.passed}/${t.total} passed${REQUIRED.has(part) ? '' : ' (informational)'}`);
  }
  lines.push(`- wall time: ${elapsed}s`);
  return lines.join('\n') + '\n';
}

main();
