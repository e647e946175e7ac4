#!/usr/bin/env node
// Compile contracts/src with the pinned solcjs and write one artifact per contract
// (operator/gpu_provider/chain/artifacts/<Contract>.json: exactly {abi, bytecode}).
//
//   node contracts/compile.mjs             write the artifacts
//   node contracts/compile.mjs --check     exit 1 and list artifacts that differ from a fresh build
//   node contracts/compile.mjs --out DIR   write the artifacts to DIR instead
//
// The output is reproducible: fixed compiler, settings and source names, no metadata hash or
// CBOR trailer in the bytecode, keys sorted, one fixed JSON layout.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const SOLC_VERSION = '0.8.37';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const SRC_DIR = path.join(HERE, 'src');
const ARTIFACT_DIR = path.join(ROOT, 'operator', 'gpu_provider', 'chain', 'artifacts');

// Deployable contracts, in deployment order. Interfaces and libraries get no artifact.
const CONTRACTS = [
  'AccessControlManager',
  'TestToken',
  'TokenRegistry',
  'EscrowUser',
  'ProviderRegistry',
  'ProviderAttributeRegistry',
  'EscrowProtocol',
  'OrderRequest',
  'ComputeLease',
  'Bid',
];

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  viaIR: false,
  metadata: { bytecodeHash: 'none', appendCBOR: false },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
};

function parseArgs(argv) {
  const options = { check: false, out: ARTIFACT_DIR };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--check') options.check = true;
    else if (argv[i] === '--out' && i + 1 < argv.length) options.out = path.resolve(argv[++i]);
    else {
      process.stderr.write(`usage: node contracts/compile.mjs [--check] [--out DIR]\n`);
      process.exit(2);
    }
  }
  return options;
}

function loadSolc() {
  const require = createRequire(path.join(ROOT, 'package.json'));
  let solc;
  try {
    solc = require('solc');
  } catch (error) {
    process.stderr.write(`solc is not installed: run \`npm ci\` in ${ROOT}\n`);
    process.exit(2);
  }
  const version = solc.version();
  if (!version.startsWith(`${SOLC_VERSION}+`)) {
    process.stderr.write(`solc ${version} found, ${SOLC_VERSION} is pinned: run \`npm ci\`\n`);
    process.exit(2);
  }
  return solc;
}

function readSources() {
  const sources = {};
  for (const file of readdirSync(SRC_DIR).filter((f) => f.endsWith('.sol')).sort()) {
    // Source unit names are bare file names, so `import "./X.sol"` resolves without a callback.
    sources[file] = { content: readFileSync(path.join(SRC_DIR, file), 'utf8') };
  }
  return sources;
}

function compile(solc) {
  const input = { language: 'Solidity', sources: readSources(), settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = output.errors ?? [];
  for (const problem of problems) process.stderr.write(`${problem.formattedMessage}\n`);
  // Warnings fail the build too: the sources are small enough to keep warning-free.
  if (problems.length > 0) process.exit(1);
  const artifacts = {};
  for (const name of CONTRACTS) {
    const contract = output.contracts?.[`${name}.sol`]?.[name];
    if (!contract) {
      process.stderr.write(`contract ${name} not found in ${name}.sol\n`);
      process.exit(1);
    }
    artifacts[name] = { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` };
  }
  return artifacts;
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys(value[key])]),
    );
  }
  return value;
}

function render(artifact) {
  return `${JSON.stringify(sortKeys(artifact), null, 1)}\n`;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const artifacts = compile(loadSolc());
  const rendered = Object.fromEntries(Object.entries(artifacts).map(([n, a]) => [n, render(a)]));
  if (options.check) {
    const drifted = [];
    for (const [name, text] of Object.entries(rendered)) {
      const file = path.join(options.out, `${name}.json`);
      if (!existsSync(file)) drifted.push(`${name}.json (missing)`);
      else if (readFileSync(file, 'utf8') !== text) drifted.push(`${name}.json (differs)`);
    }
    const expected = new Set(Object.keys(rendered).map((n) => `${n}.json`));
    for (const file of readdirSync(options.out).filter((f) => f.endsWith('.json')).sort()) {
      if (!expected.has(file)) drifted.push(`${file} (not built from contracts/src)`);
    }
    if (drifted.length > 0) {
      process.stderr.write(`artifacts out of date, run \`node contracts/compile.mjs\`:\n`);
      for (const line of drifted) process.stderr.write(`  ${line}\n`);
      process.exit(1);
    }
    process.stdout.write(`${Object.keys(rendered).length} artifacts up to date\n`);
    return;
  }
  mkdirSync(options.out, { recursive: true });
  for (const [name, text] of Object.entries(rendered)) {
    writeFileSync(path.join(options.out, `${name}.json`), text);
  }
  process.stdout.write(`wrote ${Object.keys(rendered).length} artifacts to ${path.relative(ROOT, options.out) || '.'}\n`);
}

main();
