// Self-test of runner.mjs: boots the real Pico W image (build/picosim-pico-w.uf2,
// `make firmware`) on the emulated RP2040 with a fake CYW43439 written here, in
// JS, standing for the Go side of the protocol.
//
//   cd sim/rp2040/runner && npm ci && node --test        (or: npm test)
//
// PICOSIM_UF2 and PICOSIM_BOOTROM override where the image and the boot ROM
// are looked for; without them the tests are skipped. PICOSIM_TEST_VERBOSE=1
// prints every protocol line.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const verbose = !!process.env.PICOSIM_TEST_VERBOSE;

function firstExisting(...files) {
  return files.find((f) => f && fs.existsSync(f));
}
const uf2 = firstExisting(process.env.PICOSIM_UF2, path.join(repo, 'build/picosim-pico-w.uf2'));
const bootrom = firstExisting(
  process.env.PICOSIM_BOOTROM,
  path.join(repo, '../shared/toolchains/rp2040/bootrom-b1.bin'),
  '/work/shared/toolchains/rp2040/bootrom-b1.bin',
);
const skip = !uf2 ? 'no build/picosim-pico-w.uf2 (make firmware)' : !bootrom ? 'no bootrom-b1.bin' : false;

const swap16 = (v) => (((v & 0xffff) << 16) | (v >>> 16)) >>> 0;
const hex = (v) => '0x' + (v >>> 0).toString(16).padStart(8, '0');

// A gSPI command word: write, increment, function, address, length.
function decode(cmd) {
  return {
    write: !!(cmd >>> 31),
    inc: !!((cmd >>> 30) & 1),
    fn: (cmd >>> 28) & 3,
    addr: (cmd >>> 11) & 0x1ffff,
    len: cmd & 0x7ff,
  };
}
const FN = ['bus', 'backplane', 'wlan', 'bt'];
function describe(c) {
  const d = c.decoded;
  const what = `${d.write ? 'write' : 'read '} fn${d.fn} ${FN[d.fn].padEnd(9)} addr 0x${d.addr.toString(16).padStart(5, '0')} len ${String(d.len).padStart(4)}`;
  const data = d.write ? ` data ${c.words.slice(0, 4).map(hex).join(' ')}${c.words.length > 4 ? ` ... (${c.words.length} words)` : ''}` : ` (${c.n} words in)`;
  return `${hex(c.raw)}${c.swapped ? ' swapped' : '        '} ${what}${data}${c.answer !== undefined ? ` -> ${hex(c.answer)}` : ''}`;
}

// The fake chip. "bustest": answers the bus test register (function 0, 0x14,
// read 16-bit word-swapped: the driver sends swap16(0x4000a004) and takes
// swap16 of the answer, so 0xbeadfeed reads as 0xfeedbead) and zeros for the
// rest. "registers": also keeps the bus registers (the read/write test
// register, bus control and its 16/32-bit mode) and the backplane registers,
// with the clock CSR saying ALP and HT available, so the driver goes on.
class FakeChip {
  constructor(mode) {
    this.mode = mode;
    this.wordMode32 = false;
    this.bus = new Map([[0x14, 0xfeedbead]]);
    this.backplane = new Map();
    this.commands = [];
  }

  answer(m) {
    const swapped = !this.wordMode32;
    const cmd = swapped ? swap16(m.cmd) : m.cmd;
    const d = decode(cmd);
    const rec = { raw: m.cmd, swapped, decoded: d, words: m.words.map((w) => (swapped ? swap16(w) : w)), n: m.n, at: m.at };
    this.commands.push(rec);
    let value = 0;
    const words = new Array(m.n).fill(0);
    if (d.fn === 0) {
      if (this.mode === 'bustest') {
        if (!d.write && d.addr === 0x14) value = 0xfeedbead;
      } else if (d.write) {
        const mask = d.len >= 4 ? 0xffffffff : (1 << (8 * d.len)) - 1;
        const old = this.bus.get(d.addr & ~3) ?? 0;
        const shift = 8 * (d.addr & 3);
        const v = ((old & ~(mask << shift)) | ((rec.words[0] & mask) << shift)) >>> 0;
        if ((d.addr & ~3) !== 0x14) this.bus.set(d.addr & ~3, v);
        if ((d.addr & ~3) === 0 && v & 1) this.wordMode32 = true;
      } else {
        const mask = d.len >= 4 ? 0xffffffff : (1 << (8 * d.len)) - 1;
        value = ((this.bus.get(d.addr & ~3) ?? 0) >>> (8 * (d.addr & 3))) & mask;
      }
    } else if (d.fn === 1 && this.mode === 'registers') {
      if (d.write) {
        this.backplane.set(d.addr, rec.words[0]);
      } else {
        value = this.backplane.get(d.addr) ?? 0;
        if (d.addr === 0x1000e) value |= 0xc0; // SDIO_CHIP_CLOCK_CSR: ALP and HT available
      }
    }
    if (!d.write && m.n > 0) {
      // A backplane read of a register has one word of response padding first.
      words[m.n - 1] = swapped ? swap16(value) : value >>> 0;
      rec.answer = value;
    }
    return { t: 'cmd', words, status: 0 };
  }
}

// Runs the runner: run lines of `step` ns until `done(state)` or the board
// clock reaches `limitNs`; returns everything it said.
async function runBoard({ flash, chip, stepNs = 50e6, limitNs, done }) {
  const child = spawn(
    process.execPath,
    [path.join(here, 'runner.mjs'), '--rom', bootrom, '--uf2', uf2, '--flash', flash],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (verbose) process.stderr.write(d);
  });
  const state = { lines: [], console: [], gpio: [], resets: [], stops: [], ready: false, wallStart: Date.now() };
  const rl = readline.createInterface({ input: child.stdout });
  let until = 0;
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const send = (o) => child.stdin.write(JSON.stringify(o) + '\n');
  let quitting = false;
  const next = () => {
    if (quitting) return;
    if (until >= limitNs || done(state)) {
      quitting = true;
      send({ t: 'quit' });
      return;
    }
    until += stepNs;
    send({ t: 'run', until });
  };
  for await (const line of rl) {
    if (verbose) process.stderr.write(`< ${line}\n`);
    const m = JSON.parse(line);
    state.lines.push(m);
    switch (m.t) {
      case 'ready':
        state.ready = true;
        next();
        break;
      case 'stopped':
        state.stops.push({ at: m.at, until });
        next();
        break;
      case 'console':
        state.console.push(m);
        break;
      case 'gpio':
        state.gpio.push(m);
        break;
      case 'reset':
        state.resets.push(m);
        break;
      case 'cmd':
        send(chip.answer(m));
        break;
      default:
        assert.fail(`unknown line from the runner: ${line}`);
    }
  }
  state.exitCode = await exited;
  state.stderr = stderr;
  state.wall = (Date.now() - state.wallStart) / 1000;
  return state;
}

const tmpDirs = [];
function tmpFlash() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'picosim-runner-'));
  tmpDirs.push(dir);
  return path.join(dir, 'FLASH.bin');
}
after(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function checkProtocol(state) {
  assert.equal(state.lines[0].t, 'ready', 'the first line is ready');
  assert.equal(state.exitCode, 0, `the runner exits 0 on quit (stderr: ${state.stderr.slice(-2000)})`);
  let last = 0;
  for (const m of state.lines) {
    if (m.at === undefined) continue;
    assert.ok(Number.isInteger(m.at) && m.at >= last, `times never go back: ${JSON.stringify(m)} after ${last}`);
    last = m.at;
  }
  for (const s of state.stops) {
    // The clock stops at until, or within the one instruction that started before it.
    assert.ok(s.at >= s.until && s.at < s.until + 1000, `stopped at ${s.at} for until ${s.until}`);
  }
}

test('boots the image, USB CDC console, the bus test and what the driver sends next', { skip }, async () => {
  const flash = tmpFlash();
  const chip = new FakeChip('bustest');
  const state = await runBoard({
    flash,
    chip,
    limitNs: 8e9,
    // After the bus test fails its read/write check, the firmware logs it,
    // waits 5 s and resets through AIRCR; go on until the board has booted
    // again and reached the bus test once more.
    done: (s) => s.resets.length >= 1 && chip.commands.filter((c) => c.decoded.addr === 0x14).length >= 2,
  });
  checkProtocol(state);
  assert.ok(fs.statSync(flash).size === 2 * 1024 * 1024, 'FLASH.bin is 2 MiB');

  // Console lines over USB CDC.
  const boot = state.console.filter((c) => c.line.includes('"event": "boot"'));
  assert.ok(boot.length >= 1, `a boot line on the console: ${JSON.stringify(state.console.slice(0, 5))}`);

  // The radio's power and chip select are reported.
  assert.ok(state.gpio.some((g) => g.pin === 23 && g.value === 1), 'WL_REG_ON (GPIO23) goes high');
  assert.ok(state.gpio.some((g) => g.pin === 25 && g.value === 0), 'CS (GPIO25) goes low');

  // The first command is the bus test, 16-bit word-swapped.
  const [first, second] = chip.commands;
  assert.equal(first.raw, 0xa0044000, `first command ${hex(first.raw)}`);
  assert.deepEqual(first.decoded, { write: false, inc: true, fn: 0, addr: 0x14, len: 4 });
  assert.equal(first.n, 1);
  // The driver took 0xbeadfeed for the test pattern: it goes on to the
  // read/write test register (0x18) and writes 0x12345678 there.
  assert.equal(second.decoded.write, true);
  assert.equal(second.decoded.addr, 0x18);
  assert.deepEqual(second.words, [0x12345678]);

  // AIRCR reset: the board boots again, from the same flash.
  assert.equal(state.resets[0].why, 'aircr');
  const incarnations = boot.map((c) => Number(/incarnation (\d+)/.exec(c.line)?.[1]));
  assert.ok(incarnations.length >= 2 && incarnations[1] === incarnations[0] + 1, `incarnations ${incarnations}`);

  console.log(`bus test only: ${state.console.length} console lines, ${chip.commands.length} commands, board ${(state.stops.at(-1).at / 1e9).toFixed(2)} s in ${state.wall.toFixed(1)} s wall`);
  for (const c of state.console.slice(0, 8)) console.log(`  console @${(c.at / 1e6).toFixed(3)} ms: ${c.line.slice(0, 160)}`);
  console.log('  commands:');
  for (const c of chip.commands.slice(0, 20)) console.log(`    @${(c.at / 1e6).toFixed(3)} ms ${describe(c)}`);
});

test('a fake chip with registers: the driver gets past the bus setup', { skip }, async () => {
  const flash = tmpFlash();
  const chip = new FakeChip('registers');
  const state = await runBoard({
    flash,
    chip,
    limitNs: 4e9,
    done: (s) => chip.commands.length >= 400,
  });
  checkProtocol(state);
  const after = chip.commands.slice(1);
  assert.ok(after.length >= 20, `20 commands after the bus test, got ${after.length}`);
  // The bus switched to 32-bit words: commands stop being swapped.
  assert.ok(chip.wordMode32, 'the driver configured 32-bit words');
  assert.ok(
    after.some((c) => !c.swapped && c.decoded.fn === 1),
    'backplane commands in 32-bit mode',
  );
  const t0 = chip.commands[0].at;
  console.log(`registers: ${chip.commands.length} commands, board ${(state.stops.at(-1).at / 1e9).toFixed(2)} s in ${state.wall.toFixed(1)} s wall`);
  for (const c of chip.commands.slice(0, 40)) console.log(`    +${((c.at - t0) / 1e3).toFixed(1).padStart(8)} us ${describe(c)}`);
  const big = chip.commands.filter((c) => c.words.length > 4);
  if (big.length) {
    const span = (big.at(-1).at - big[0].at) / 1e9;
    console.log(`  ${big.length} bulk writes (firmware upload) in ${span.toFixed(3)} s of board time`);
  }
});
