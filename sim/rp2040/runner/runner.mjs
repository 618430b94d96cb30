#!/usr/bin/env node
// runner.mjs: the picosim Pico W firmware image on an emulated RP2040
// (rp2040js 1.4.1), in lockstep with a Go process that models the CYW43439
// radio and the LAN.
//
//   node runner.mjs --rom BOOTROM --uf2 IMAGE.uf2 --flash FLASH.bin [--trace]
//                   [--uid HEX16] [--no-bus-timing] [--profile]
//
// stdin carries the Go side's lines, stdout the runner's, one JSON object a
// line; stdout carries nothing else (diagnostics go to stderr):
//
//   runner -> Go  {"t":"ready"}
//   Go -> runner  {"t":"run","until":NS}     run until the board clock reaches NS
//   runner -> Go  {"t":"console","at":NS,"line":"..."}        a USB CDC line
//                 {"t":"gpio","at":NS,"pin":P,"value":0|1}    an output changed
//                 {"t":"cmd","at":NS,"cmd":U32,"write":B,"words":[...],"n":N}
//                     one gSPI transfer; the runner then waits for exactly one
//   Go -> runner  {"t":"cmd","words":[...],"status":U32}
//   runner -> Go  {"t":"reset","at":NS,"why":"aircr"|"watchdog"}
//                 {"t":"stopped","at":NS[,"idle":NS]}
//   Go -> runner  {"t":"quit"}                 save FLASH.bin, exit 0
//
// The board clock is the emulated CPU's cycle count at 125 MHz (ns = cycles
// x 8), counted from power-on across resets. The runner drives the CPU itself
// (no setTimeout, no rp2040js Simulator) and never goes past `until` but by
// the rest of the one instruction that started before it (a few cycles: the
// "stopped" line reports the clock as it is). Idle time (WFI/WFE with a timer
// pending) is skipped to the next alarm, never past `until`.
//
// rp2040js is used as published: what it lacks is patched at run time on its
// classes and instances, each patch below marked "PATCH n" and listed in
// README.md.

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import util from 'node:util';
import {
  RP2040,
  USBCDC,
  StateMachine,
  GPIOPinState,
  createSetupPacket,
  DataDirection,
  SetupType,
  SetupRecipient,
} from 'rp2040js';

// ---------------------------------------------------------------------------
// Constants

const NS_PER_CYCLE = 8; // 125 MHz
const FLASH_SIZE = 2 * 1024 * 1024; // the Pico W's W25Q16JV
const FLASH_BASE = 0x10000000;
const BOOT2_SRAM = 0x20041f00; // where the boot ROM copies boot2 to
const BOOT2_STACK = 0x20041f00; // the boot ROM's stack (its initial SP), just below boot2

// Pins whose bit-level traffic is the gSPI (never reported as gpio events).
const GSPI_DATA_PIN = 24;
const GSPI_CLK_PIN = 29;

// Datasheet typical times of the W25Q16JV (the boot ROM's flash functions
// block for them on a real board).
const FLASH_SECTOR_ERASE_NS = 45e6; // 4 KiB
const FLASH_BLOCK_ERASE_NS = 150e6; // 64 KiB
const FLASH_PAGE_PROGRAM_NS = 0.4e6; // 256 bytes
const FLASH_JEDEC_ID = [0xef, 0x40, 0x15];

// ---------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
  const opts = { trace: false, busTiming: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--rom':
        opts.rom = val();
        break;
      case '--uf2':
        opts.uf2 = val();
        break;
      case '--flash':
        opts.flash = val();
        break;
      case '--uid':
        opts.uid = val();
        break;
      case '--trace':
        opts.trace = true;
        break;
      case '--profile':
        opts.profile = true;
        break;
      case '--no-bus-timing':
        opts.busTiming = false;
        break;
      case '-h':
      case '--help':
        process.stderr.write(
          'usage: node runner.mjs --rom BOOTROM --uf2 IMAGE.uf2 --flash FLASH.bin [--trace] [--uid HEX16] [--no-bus-timing] [--profile]\n',
        );
        process.exit(0);
        break;
      default:
        die(`unknown argument ${a}`);
    }
  }
  if (!opts.rom || !opts.flash || (!opts.uf2 && !fs.existsSync(opts.flash))) {
    die('need --rom BOOTROM --flash FLASH.bin and --uf2 IMAGE.uf2 (unless FLASH.bin exists)');
  }
  return opts;
}

function die(msg) {
  process.stderr.write(`runner: ${msg}\n`);
  process.exit(2);
}

// stdout is the protocol's: anything that would print there goes to stderr.
for (const name of ['log', 'info', 'debug']) {
  console[name] = (...args) => process.stderr.write(util.format(...args) + '\n');
}

const opts = parseArgs(process.argv.slice(2));
const trace = opts.trace
  ? (msg) => process.stderr.write(`runner: ${msg}\n`)
  : () => {};
const hex = (v) => '0x' + (v >>> 0).toString(16).padStart(8, '0');

// ---------------------------------------------------------------------------
// Protocol I/O: synchronous, on the raw descriptors. process.stdin and
// process.stdout are never touched (a stream would make fd 0 non-blocking and
// put writes behind the event loop, which this runner never returns to).

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function pause(ms) {
  Atomics.wait(sleepCell, 0, 0, ms);
}

function writeAll(fd, text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN') {
        pause(1);
        continue;
      }
      if (e.code === 'EPIPE') {
        shutdown(0, 'stdout closed');
      }
      throw e;
    }
  }
}

// Lines to Go are buffered and written when the runner is about to wait for
// Go (a cmd's answer, or the next order after "stopped"): one write for the
// chip select's two gpio lines and the cmd line of a transfer.
let outBuf = '';
function send(obj) {
  outBuf += JSON.stringify(obj) + '\n';
  if (outBuf.length > 1 << 16) flush();
}
function flush() {
  if (outBuf) {
    const text = outBuf;
    outBuf = '';
    writeAll(1, text);
  }
}

const inBuf = Buffer.alloc(1 << 16);
let inPending = '';
let inEOF = false;
function readLine() {
  flush();
  for (;;) {
    const nl = inPending.indexOf('\n');
    if (nl >= 0) {
      const line = inPending.slice(0, nl);
      inPending = inPending.slice(nl + 1);
      if (line.trim() === '') continue;
      return line;
    }
    if (inEOF) return null;
    let n;
    try {
      n = fs.readSync(0, inBuf, 0, inBuf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') {
        pause(1);
        continue;
      }
      if (e.code === 'EOF') {
        n = 0;
      } else {
        throw e;
      }
    }
    if (n === 0) {
      inEOF = true;
      continue;
    }
    inPending += inBuf.toString('utf8', 0, n);
  }
}

function readMessage() {
  const line = readLine();
  if (line === null) return null;
  try {
    return JSON.parse(line);
  } catch {
    process.stderr.write(`runner: not JSON from Go: ${line}\n`);
    return { t: 'invalid' };
  }
}

// ---------------------------------------------------------------------------
// Logger for rp2040js: everything to stderr; warnings once per text, all of
// them with --trace; never throws (rp2040js's ConsoleLogger throws on error).

const seenWarnings = new Set();
const logger = {
  debug() {},
  info(component, msg) {
    if (opts.trace) process.stderr.write(`rp2040js [${component}] ${msg}\n`);
  },
  warn(component, msg) {
    const key = `${component} ${msg}`;
    if (!opts.trace) {
      if (seenWarnings.has(key) || seenWarnings.size > 200) return;
      seenWarnings.add(key);
    }
    process.stderr.write(`rp2040js warning [${component}] ${msg}\n`);
  },
  error(component, msg) {
    process.stderr.write(`rp2040js error [${component}] ${msg}\n`);
  },
};

// ---------------------------------------------------------------------------
// The flash image: FLASH.bin if it exists, else the UF2 written into an
// erased 2 MiB, then saved as FLASH.bin.

function loadUF2(file, image) {
  const data = fs.readFileSync(file);
  let blocks = 0;
  for (let off = 0; off + 512 <= data.length; off += 512) {
    const magic0 = data.readUInt32LE(off);
    const magic1 = data.readUInt32LE(off + 4);
    const flags = data.readUInt32LE(off + 8);
    const target = data.readUInt32LE(off + 12);
    const size = data.readUInt32LE(off + 16);
    const magicEnd = data.readUInt32LE(off + 508);
    if (magic0 !== 0x0a324655 || magic1 !== 0x9e5d5157 || magicEnd !== 0x0ab16f30) {
      die(`${file}: block ${off / 512} is not a UF2 block`);
    }
    if (flags & 0x1) continue; // "not main flash"
    if (flags & 0x2000 && data.readUInt32LE(off + 28) !== 0xe48bff56) continue; // another family than RP2040
    if (size > 476 || target < FLASH_BASE || target + size > FLASH_BASE + FLASH_SIZE) {
      die(`${file}: block ${off / 512} writes ${size} bytes at ${hex(target)}, outside the flash`);
    }
    image.set(data.subarray(off + 32, off + 32 + size), target - FLASH_BASE);
    blocks++;
  }
  if (!blocks) die(`${file}: no UF2 blocks`);
  return blocks;
}

const flashImage = new Uint8Array(FLASH_SIZE).fill(0xff);
if (fs.existsSync(opts.flash)) {
  const data = fs.readFileSync(opts.flash);
  if (data.length !== FLASH_SIZE) {
    process.stderr.write(
      `runner: ${opts.flash} has ${data.length} bytes, not ${FLASH_SIZE}: using its first bytes, the rest erased\n`,
    );
  }
  flashImage.set(data.subarray(0, FLASH_SIZE));
  trace(`flash from ${opts.flash}`);
} else {
  const blocks = loadUF2(opts.uf2, flashImage);
  fs.writeFileSync(opts.flash, flashImage);
  trace(`flash from ${opts.uf2} (${blocks} blocks), saved to ${opts.flash}`);
}
const flashFd = fs.openSync(opts.flash, 'r+');
function persistFlash(offset, length) {
  fs.writeSync(flashFd, flashImage, offset, length, offset);
}

// The flash chip's unique ID (command 0x4B), which the firmware names a fresh
// board from: --uid, else a hash of FLASH.bin's absolute path, so each board
// of a fleet (each with its own FLASH.bin) has its own, the same every run.
const flashUID = (() => {
  if (opts.uid) {
    if (!/^[0-9a-fA-F]{16}$/.test(opts.uid)) die('--uid takes 16 hex digits');
    return Buffer.from(opts.uid, 'hex');
  }
  return crypto.createHash('sha256').update(path.resolve(opts.flash)).digest().subarray(0, 8);
})();

// The ring oscillator's random bit: a xorshift32 seeded from the unique ID,
// running on across resets (so each boot draws new numbers, the same ones
// every run of the same board).
let roscRandom = flashUID.readUInt32LE(0) ^ flashUID.readUInt32LE(4) || 0x12345678;
function roscRandomBit() {
  let x = roscRandom;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  roscRandom = x >>> 0;
  return roscRandom & 1;
}

// ---------------------------------------------------------------------------
// The boot ROM and its function table.

const bootromBytes = fs.readFileSync(opts.rom);
if (bootromBytes.length !== 16384) die(`${opts.rom}: ${bootromBytes.length} bytes, not 16384`);
const bootromWords = new Uint32Array(4096);
for (let i = 0; i < 4096; i++) bootromWords[i] = bootromBytes.readUInt32LE(i * 4);

// The ROM's function table (its 16-bit pointer at 0x14): pairs of a two-letter
// code and a 16-bit address (Thumb bit set), ended by a zero code.
function romFunctions() {
  const table = {};
  let p = bootromBytes.readUInt16LE(0x14);
  for (;;) {
    const code = bootromBytes.readUInt16LE(p);
    if (!code) break;
    table[String.fromCharCode(code & 0xff, code >> 8)] = bootromBytes.readUInt16LE(p + 2) & ~1;
    p += 4;
  }
  return table;
}
const romFn = romFunctions();
for (const code of ['IF', 'EX', 'RE', 'RP', 'FC', 'CX']) {
  if (romFn[code] === undefined) die(`${opts.rom}: no '${code}' in the ROM's function table`);
}
trace(
  `ROM functions: ${Object.entries(romFn)
    .map(([k, v]) => `${k}=${v.toString(16)}`)
    .join(' ')}`,
);

// ---------------------------------------------------------------------------
// Class-level patches (once, on rp2040js's prototypes).

// PATCH 1 (CortexM0Core.exceptionEntry): rp2040js loads PC from the vector
// table with bit 0 (the Thumb bit) still set. The instruction fetch masks it,
// but `add rX, pc` / `mov rX, pc` read PC with it, so TinyGo's jump tables in
// interrupt handlers land one byte off. The architecture clears it on entry.
// (CortexM0Core is not exported: its prototype is patched through the first
// RP2040's core.)
let corePatched = false;
function patchCoreClass(core) {
  if (corePatched) return;
  corePatched = true;
  const coreProto = Object.getPrototypeOf(core);
  const exceptionEntry = coreProto.exceptionEntry;
  coreProto.exceptionEntry = function (exceptionNumber) {
    exceptionEntry.call(this, exceptionNumber);
    this.PC &= ~1;
  };

  // PATCH 12 (CortexM0Core.executeInstruction): ADCS and SBCS set the V
  // flag wrong when the carry in crosses the sign boundary. rp2040js adds
  // the carry to an operand before computing the flags (SBCS: Rdn -
  // (Rm + NOT C)), so 0 - 0x7fffffff - 1, the high half of a 64-bit
  // compare of a small number with MaxInt64, sets V, and `x < MaxInt64`
  // came out false: the firmware's watchdog, whose "never" is MaxInt64,
  // rejoined WiFi 4 ms after every join. The flags are recomputed here as
  // the architecture's AddWithCarry(Rdn, Rm or NOT Rm, C) gives them.
  const executeInstruction = coreProto.executeInstruction;
  coreProto.executeInstruction = function () {
    if (this.interruptsUpdated && this.checkForInterrupts()) {
      this.waiting = false; // as the original's prologue, so the peek below is what runs
    }
    const op = this.readUint16(this.PC & ~1);
    const sbc = op >> 6 === 0b0100000110;
    if (!sbc && op >> 6 !== 0b0100000101) {
      return executeInstruction.call(this);
    }
    const rdn = op & 7;
    const x = this.registers[rdn] >>> 0;
    const y = sbc ? ~this.registers[(op >> 3) & 7] >>> 0 : this.registers[(op >> 3) & 7] >>> 0;
    const c = this.C ? 1 : 0;
    const cycles = executeInstruction.call(this);
    const sum = x + y + c;
    const result = sum >>> 0;
    this.registers[rdn] = result;
    this.N = (result & 0x80000000) !== 0;
    this.Z = result === 0;
    this.C = sum > 0xffffffff;
    this.V = (result | 0) !== (x | 0) + (y | 0) + c;
    return cycles;
  };
}

// PATCH 2 (StateMachine.writeUint32): changing SHIFTCTRL's FJOIN bits flushes
// both FIFOs on the RP2040 (TinyGo's ClearFIFOs toggles FJOIN_RX twice);
// rp2040js only stores the register. Also (StateMachine.step) a disabled state
// machine does not run.
{
  const SM_SHIFTCTRL = 0x08; // offset within a state machine's registers
  const FJOIN = 0xc0000000;
  const writeUint32 = StateMachine.prototype.writeUint32;
  StateMachine.prototype.writeUint32 = function (offset, value) {
    const old = this.shiftCtrl;
    writeUint32.call(this, offset, value);
    if (offset === SM_SHIFTCTRL && ((old ^ value) & FJOIN) !== 0) {
      this.txFIFO.reset();
      this.rxFIFO.reset();
      this.updateDMATx();
      this.updateDMARx();
      this.pio.checkInterrupts();
      this.onFIFOsCleared?.();
    }
  };
  const step = StateMachine.prototype.step;
  StateMachine.prototype.step = function () {
    if (this.enabled && !this.external) step.call(this);
  };
}

// ---------------------------------------------------------------------------
// The machine: one RP2040 from power-on or a reset to the next reset.

let machine = null; // the current one
let bootOffsetNs = 0; // board time at which the current machine's clock read 0
let resetCount = 0;
let cyclesBefore = 0; // CPU cycles executed by the machines before the current one
let cmdWaitNs = 0n; // wall time spent waiting for the Go side's answers to cmd lines
const carried = { watchdogScratch: new Uint32Array(8), watchdogReason: 0 };

// Whole nanoseconds (an alarm of rp2040js may fall between two).
function boardNow() {
  return Math.floor(bootOffsetNs + machine.clock.nanosCounter);
}

class Machine {
  constructor() {
    const mcu = new RP2040();
    patchCoreClass(mcu.core);
    this.mcu = mcu;
    this.clock = mcu.clock;
    this.core = mcu.core;
    mcu.logger = logger;
    mcu.loadBootrom(bootromWords); // resets the core and erases rp2040js's flash
    mcu.flash.set(flashImage);
    this.pendingReset = null;
    this.stallUntil = 0; // local ns: the CPU is inside a ROM flash function
    this.romHooks = new Map();
    this.pioStepping = false;

    this.patchROMFlashFunctions();
    this.patchAIRCR();
    this.patchWatchdog();
    this.patchSSI();
    this.patchQSPIAndROSC();
    this.patchPIO();
    this.gspi = new GSPI(this);
    this.console = new Console(this);
    this.gpio = new GPIOReporter(this);
    this.boot();
  }

  // Boot as the ROM does on a flash boot: boot2 (the image's first 256 bytes)
  // copied to 0x20041f00 and entered with the ROM's stack (SP 0x20041f00) and LR = 0,
  // which boot2 takes as "vector into the flash image" (VTOR = 0x10000100,
  // SP and PC from its vectors). The ROM's own path to it cannot run here:
  // it reads boot2 through the SSI's data path, which rp2040js does not model.
  boot() {
    const { mcu, core } = this;
    mcu.sram.set(mcu.flash.subarray(0, 256), BOOT2_SRAM - 0x20000000);
    core.VTOR = 0;
    core.SP = BOOT2_STACK;
    core.LR = 0;
    core.PC = BOOT2_SRAM;
    const wd = mcu.peripherals[0x40058];
    wd.scratchData.set(carried.watchdogScratch);
    wd.reason = carried.watchdogReason;
  }

  // PATCH 3 (ROM flash functions): rp2040js loses flash writes made through
  // the SSI, so the boot ROM's flash_range_erase ('RE') and
  // flash_range_program ('RP') are done here on the flash image (and
  // FLASH.bin) when the CPU calls them, and connect_internal_flash ('IF'),
  // flash_exit_xip ('EX'), flash_flush_cache ('FC') and flash_enter_cmd_xip
  // ('CX') return at once; each returns to LR as the ROM function would. The
  // CPU then stays in the call for the flash chip's typical erase/program time.
  patchROMFlashFunctions() {
    const { mcu, core } = this;
    const ret = () => {
      core.PC = core.LR & ~1;
    };
    const stall = (ns) => {
      this.stallUntil = Math.max(this.stallUntil, this.clock.nanosCounter) + ns;
    };
    const noop = (name) => () => {
      trace(`ROM ${name}`);
      ret();
    };
    this.romHooks.set(romFn.IF, noop('connect_internal_flash'));
    this.romHooks.set(romFn.EX, noop('flash_exit_xip'));
    this.romHooks.set(romFn.FC, noop('flash_flush_cache'));
    this.romHooks.set(romFn.CX, noop('flash_enter_cmd_xip'));
    this.romHooks.set(romFn.RE, () => {
      const addr = core.registers[0] >>> 0;
      const count = core.registers[1] >>> 0;
      const blockSize = core.registers[2] >>> 0;
      const blockCmd = core.registers[3] & 0xff;
      // As the ROM: whole blocks where aligned, 4 KiB sectors elsewhere.
      let a = addr & ~0xfff;
      const end = Math.min(FLASH_SIZE, (addr + count + 0xfff) & ~0xfff);
      let ns = 0;
      while (a < end) {
        if (blockCmd && blockSize && a % blockSize === 0 && end - a >= blockSize) {
          a += blockSize;
          ns += FLASH_BLOCK_ERASE_NS;
        } else {
          a += 4096;
          ns += FLASH_SECTOR_ERASE_NS;
        }
      }
      const start = addr & ~0xfff;
      if (end > start) {
        flashImage.fill(0xff, start, end);
        mcu.flash.fill(0xff, start, end);
        persistFlash(start, end - start);
      }
      trace(`ROM flash_range_erase ${hex(addr)} +${count} (${ns / 1e6} ms)`);
      stall(ns);
      ret();
    });
    this.romHooks.set(romFn.RP, () => {
      const addr = core.registers[0] >>> 0;
      const data = core.registers[1] >>> 0;
      const count = core.registers[2] >>> 0;
      const end = Math.min(FLASH_SIZE, addr + count);
      for (let a = addr, p = data; a < end; a++, p++) {
        const v = flashImage[a] & mcu.readUint8(p); // NOR: programming only clears bits
        flashImage[a] = v;
        mcu.flash[a] = v;
      }
      if (end > addr) persistFlash(addr, end - addr);
      const ns = Math.ceil(count / 256) * FLASH_PAGE_PROGRAM_NS;
      trace(`ROM flash_range_program ${hex(addr)} +${count} from ${hex(data)}`);
      stall(ns);
      ret();
    });
  }

  // PATCH 4 (PPB AIRCR): SYSRESETREQ (0x05FA0004 written to 0xE000ED0C)
  // resets the chip: a new RP2040 boots from the same flash (the reset
  // happens after the writing instruction).
  patchAIRCR() {
    const ppb = this.mcu.ppb;
    const writeUint32 = ppb.writeUint32.bind(ppb);
    ppb.writeUint32 = (offset, value) => {
      if (offset === 0xd0c && value >>> 16 === 0x05fa && value & 0x4) {
        carried.watchdogReason = 0;
        this.requestReset('aircr');
        return;
      }
      writeUint32(offset, value);
    };
  }

  // PATCH 5 (watchdog): rp2040js only logs a watchdog trigger; here it resets
  // the chip like AIRCR, keeping the watchdog's scratch registers and REASON.
  patchWatchdog() {
    const wd = this.mcu.peripherals[0x40058];
    wd.onWatchdogTrigger = () => {
      carried.watchdogReason = wd.reason;
      this.requestReset('watchdog');
    };
  }

  requestReset(why) {
    if (this.pendingReset) return;
    const wd = this.mcu.peripherals[0x40058];
    carried.watchdogScratch.set(wd.scratchData);
    this.pendingReset = why;
  }

  // PATCH 6 (SSI): rp2040js's SSI answers nothing on its data register (but a
  // 0 after a read-status command). This one keeps a receive FIFO with a byte
  // per byte sent, as a W25Q16JV answers: status 1 (0x05) not busy, status 2
  // (0x35) QE set (so boot2 leaves the status registers alone), the JEDEC ID
  // (0x9F), the unique ID (0x4B: machine.DeviceID, the firmware's default
  // name) and data reads (0x03). A command runs from chip select forced low to
  // forced high (IO_QSPI's SS override, as TinyGo's flash_do_cmd does), or
  // without an override from a byte written to an empty receive FIFO.
  patchSSI() {
    const ssi = this.mcu.peripherals[0x18000];
    const SR = 0x28;
    const DR0 = 0x60;
    const SSIENR = 0x08;
    const RXFLR = 0x24;
    const TXFLR = 0x20;
    const rx = [];
    this.ssi = { rx, cmd: -1, index: 0, csForced: false };
    const st = this.ssi;
    const readUint32 = ssi.readUint32.bind(ssi);
    const writeUint32 = ssi.writeUint32.bind(ssi);
    const answer = (byte) => {
      if (st.cmd < 0 || (!st.csForced && rx.length === 0)) {
        st.cmd = byte;
        st.index = 0;
        st.addr = 0;
      }
      const i = st.index++;
      let out = 0;
      switch (st.cmd) {
        case 0x05:
          out = 0x00;
          break;
        case 0x35:
          out = 0x02;
          break;
        case 0x9f:
          out = i >= 1 && i <= 3 ? FLASH_JEDEC_ID[i - 1] : 0;
          break;
        case 0x4b:
          out = i >= 5 && i <= 12 ? flashUID[i - 5] : 0;
          break;
        case 0x03:
          if (i >= 1 && i <= 3) st.addr = (st.addr << 8) | byte;
          out = i >= 4 ? flashImage[(st.addr + i - 4) % FLASH_SIZE] : 0;
          break;
      }
      if (rx.length < 16) rx.push(out);
    };
    ssi.readUint32 = (offset) => {
      switch (offset) {
        case DR0:
          return rx.length ? rx.shift() : 0;
        case SR:
          return 0x06 | (rx.length ? 0x08 : 0); // TFE | TFNF | RFNE, never BUSY
        case RXFLR:
          return rx.length;
        case TXFLR:
          return 0;
      }
      return readUint32(offset);
    };
    ssi.writeUint32 = (offset, value) => {
      if (offset === DR0) {
        answer(value & 0xff);
        return;
      }
      if (offset === SSIENR && !(value & 1)) {
        rx.length = 0; // disabling the SSI flushes its FIFOs
        st.cmd = -1;
      }
      writeUint32(offset, value);
    };
  }

  // PATCH 7 (IO_QSPI, ROSC): unimplemented in rp2040js (reads give
  // 0xffffffff). IO_QSPI becomes a plain register file whose SS override ends
  // and starts SSI commands; ROSC a register file whose RANDOMBIT
  // (machine.GetRNG) gives the bits of a seeded generator and STATUS says
  // stable.
  patchQSPIAndROSC() {
    const qspi = this.mcu.peripherals[0x40018];
    const qregs = new Uint32Array(0x40);
    qspi.readUint32 = (offset) => (offset < 0x100 ? qregs[offset >> 2] : 0);
    qspi.writeUint32 = (offset, value) => {
      if (offset >= 0x100) return;
      qregs[offset >> 2] = value;
      if (offset === 0x0c) {
        // GPIO_QSPI_SS_CTRL: OUTOVER 2 = drive low, 3 = drive high
        const over = (value >> 8) & 3;
        if (over === 2 && !this.ssi.csForced) {
          this.ssi.csForced = true;
          this.ssi.cmd = -1;
        } else if (over !== 2 && this.ssi.csForced) {
          this.ssi.csForced = false;
          this.ssi.cmd = -1;
        }
        if (over === 2) this.ssi.rx.length = 0;
      }
    };
    const rosc = this.mcu.peripherals[0x40060];
    const rregs = new Uint32Array(0x40);
    rosc.readUint32 = (offset) => {
      if (offset === 0x1c) return roscRandomBit(); // RANDOMBIT
      if (offset === 0x18) return 0x80001000; // STATUS: STABLE, ENABLED
      return offset < 0x100 ? rregs[offset >> 2] : 0;
    };
    rosc.writeUint32 = (offset, value) => {
      if (offset < 0x100) rregs[offset >> 2] = value;
    };
  }

  // PATCH 8 (PIO): rp2040js runs the PIO from setTimeout batches, out of step
  // with the CPU. Here RPPIO.run does nothing; the run loop steps a PIO block
  // once per CPU instruction while it has an enabled state machine other than
  // PIO0 SM0 (none in this image). PIO0 SM0, the gSPI, never runs its
  // program: GSPI (below) stands for it at the FIFO level.
  patchPIO() {
    for (const pio of this.mcu.pio) {
      pio.run = () => this.updatePIOStepping();
      const writeUint32 = pio.writeUint32.bind(pio);
      if (pio.index === 0) {
        const sm0 = pio.machines[0];
        sm0.external = true; // StateMachine.step skips it (PATCH 2)
        pio.writeUint32 = (offset, value) => {
          if (offset === 0x000) {
            // CTRL
            const was = sm0.enabled;
            writeUint32(offset, value);
            if (value & (1 << 4)) this.gspi.restart();
            if (!was && sm0.enabled) this.gspi.enabled();
            else if (was && !sm0.enabled) this.gspi.disabled();
            this.updatePIOStepping();
            return;
          }
          writeUint32(offset, value);
          if (offset === 0x010) this.gspi.txWritten(); // TXF0
        };
        const readUint32 = pio.readUint32.bind(pio);
        pio.readUint32 = (offset) => {
          const v = readUint32(offset);
          if (offset === 0x020) this.gspi.rxRead(); // RXF0
          return v;
        };
        sm0.onFIFOsCleared = () => this.gspi.fifosCleared();
      } else {
        pio.writeUint32 = (offset, value) => {
          writeUint32(offset, value);
          if (offset === 0x000) this.updatePIOStepping();
        };
      }
    }
  }

  updatePIOStepping() {
    const [p0, p1] = this.mcu.pio;
    const on0 = p0.machines.some((m, i) => i > 0 && m.enabled);
    const on1 = p1.machines.some((m) => m.enabled);
    this.pioSteps = [on0 ? p0 : null, on1 ? p1 : null].filter(Boolean);
    this.pioStepping = this.pioSteps.length > 0;
  }
}

// ---------------------------------------------------------------------------
// The gSPI at the FIFO level, in place of PIO0 SM0's spi3w program.
//
// piolib.SPI3w's prepTx: disable SM0, clear its FIFOs, restart it, SetX(bits
// out - 1) and SetY(bits in - 1) (each a TXF0 word and an exec'd `out x, 32`
// / `out y, 32`, which rp2040js executes: X and Y are set when SM0 is
// enabled), exec `set pindirs, 1`, jmp to the wrap target, enable. Then the
// CPU (the command word) and the DMA (a write's data words) push X+1 bits
// into TXF0; the program shifts them out, then (Y != 0) shifts Y+1 bits in,
// autopushed to RXF0 a word at a time; the CPU or the DMA (DREQ PIO0_RX0)
// reads them. With status enabled (the driver always enables it) the last
// word in is the gSPI status word.
//
// Here: when SM0 is enabled, X and Y give the words out (nOut) and in (nIn);
// TXF0 words are taken as they come (so the TX DREQ stays up while the DMA
// pushes); when nOut are in, the transfer goes to the Go side as one "cmd"
// line and its answer (the data words, then the status word) is queued for
// RXF0, a word each 32 bit times after the words out, as the program would
// push them (bit time: 2 PIO cycles at SM0's clock divider; 40 ns for the
// driver's 25 MHz), stalling while RXF0 is full.
class GSPI {
  constructor(m) {
    this.m = m;
    this.pio = m.mcu.pio[0];
    this.sm = this.pio.machines[0];
    this.state = 'idle';
    this.rxQueue = [];
    this.alarm = m.clock.createAlarm(() => this.deliver());
    this.count = 0;
  }

  bitNs() {
    if (!opts.busTiming) return 0;
    const div = (this.sm.clockDivInt || 65536) + this.sm.clockDivFrac / 256;
    return 2 * div * NS_PER_CYCLE;
  }

  restart() {
    this.abort();
  }

  abort() {
    this.state = 'idle';
    this.rxQueue = [];
    this.alarm.cancel();
  }

  enabled() {
    const x = this.sm.x >>> 0;
    const y = this.sm.y >>> 0;
    if ((x + 1) % 32 !== 0 || (y !== 0 && (y + 1) % 32 !== 0)) {
      process.stderr.write(
        `runner: PIO0 SM0 enabled with X=${x} Y=${y}, not a whole number of words: ignored\n`,
      );
      this.state = 'idle';
      return;
    }
    this.nOut = (x + 1) / 32;
    this.nIn = y === 0 ? 0 : (y + 1) / 32;
    this.out = [];
    this.rxQueue = [];
    this.busNs = 0; // local ns at which the words taken so far are on the wire
    this.state = 'out';
    this.pump();
  }

  disabled() {
    // The driver disables SM0 only in the next prepTx, after a transfer ended.
    if (this.state === 'out') {
      process.stderr.write(`runner: gSPI transfer abandoned after ${this.out.length} of ${this.nOut} words out\n`);
    }
    this.state = 'idle';
    this.alarm.cancel();
  }

  fifosCleared() {
    this.rxQueue = [];
    this.alarm.cancel();
  }

  txWritten() {
    if (this.state === 'out' && this.sm.enabled) this.pump();
  }

  rxRead() {
    if (this.rxQueue.length) this.deliver();
  }

  pump() {
    const { sm } = this;
    const bit = this.bitNs();
    let took = false;
    while (this.state === 'out' && !sm.txFIFO.empty) {
      const now = this.m.clock.nanosCounter;
      this.out.push(sm.txFIFO.pull() >>> 0);
      this.busNs = Math.max(this.busNs, now) + 32 * bit;
      took = true;
      if (this.out.length === this.nOut) this.exchange();
    }
    if (took) {
      sm.updateDMATx();
      this.pio.checkInterrupts();
    }
  }

  exchange() {
    const write = this.nOut > 1;
    const cmd = this.out[0];
    // With status enabled, the words in are the data words and the status.
    const n = write ? 0 : Math.max(this.nIn - 1, 0);
    const msg = { t: 'cmd', at: boardNow(), cmd, write, words: write ? this.out.slice(1) : [], n };
    send(msg);
    this.count++;
    const waitStart = process.hrtime.bigint();
    const reply = awaitCmdReply();
    cmdWaitNs += process.hrtime.bigint() - waitStart;
    const words = [];
    if (!write) {
      const got = Array.isArray(reply.words) ? reply.words : [];
      for (let i = 0; i < n; i++) words.push((got[i] ?? 0) >>> 0);
    }
    words.push((reply.status ?? 0) >>> 0);
    this.rxQueue = words.slice(0, this.nIn);
    if (opts.trace) {
      trace(
        `gSPI #${this.count} ${describeCmd(cmd)} ${write ? 'data ' + msg.words.map(hex).join(' ') : 'n=' + n}` +
          ` -> ${this.rxQueue.map(hex).join(' ')}`,
      );
    }
    const bit = this.bitNs();
    // After the words out: `jmp !y`, `set pindirs, 0`, `nop`, then 32 bits a word.
    this.nextReadyNs = this.busNs + (3 * bit) / 2 + 32 * bit;
    this.state = this.rxQueue.length ? 'in' : 'done';
    this.deliver();
  }

  deliver() {
    const { sm } = this;
    const now = this.m.clock.nanosCounter;
    const bit = this.bitNs();
    let pushed = false;
    while (this.rxQueue.length && !sm.rxFIFO.full && this.nextReadyNs <= now) {
      sm.rxFIFO.push(this.rxQueue.shift());
      this.nextReadyNs = Math.max(this.nextReadyNs, now) + 32 * bit;
      pushed = true;
    }
    if (pushed) {
      sm.updateDMARx();
      this.pio.checkInterrupts();
    }
    if (!this.rxQueue.length) {
      if (this.state === 'in') this.state = 'done';
      this.alarm.cancel();
    } else if (!sm.rxFIFO.full) {
      this.alarm.schedule(Math.max(0, this.nextReadyNs - now));
    } else {
      // Stalled on a full RXF0: the next word is pushed when one is read,
      // 32 bit times after the stall ends at the earliest.
      this.nextReadyNs = Math.max(this.nextReadyNs, now);
      this.alarm.cancel();
    }
  }
}

function awaitCmdReply() {
  for (;;) {
    const msg = readMessage();
    if (msg === null) shutdown(0, 'stdin closed while a gSPI command waited');
    if (msg.t === 'cmd') return msg;
    if (msg.t === 'quit') shutdown(0, 'quit while a gSPI command waited');
    process.stderr.write(`runner: expected the answer to a cmd, got ${JSON.stringify(msg)}: ignored\n`);
  }
}

// A gSPI command word, decoded for traces: as sent, and 16-bit word-swapped
// (the driver's first commands, before it sets the bus to 32-bit words).
function describeCmd(cmd) {
  const dec = (c) => {
    const fn = ['bus', 'backplane', 'wlan', 'bt'][(c >>> 28) & 3];
    return `${c >>> 31 ? 'W' : 'R'} ${fn} 0x${((c >>> 11) & 0x1ffff).toString(16)} len ${c & 0x7ff}`;
  };
  return `${hex(cmd)} [${dec(cmd)} | swapped: ${dec((((cmd & 0xffff) << 16) | (cmd >>> 16)) >>> 0)}]`;
}

// ---------------------------------------------------------------------------
// Console: USB CDC.
//
// PATCH 9 (USBCDC.cdcSetControlLineState): rp2040js's host sends
// SET_CONTROL_LINE_STATE (DTR|RTS) with bmRequestType 0x20 (class, to the
// device); TinyGo's CDC takes it only as 0x21 (class, to the interface) and
// stalls otherwise, so its line state stays 0 and USBCDC.Write drops every
// byte. This instance sends it to interface 0.
class Console {
  constructor(m) {
    this.m = m;
    this.line = [];
    const cdc = new USBCDC(m.mcu.usbCtrl);
    this.cdc = cdc;
    cdc.cdcSetControlLineState = function (value = 0x3, interfaceNumber = 0) {
      this.usb.sendSetupPacket(
        createSetupPacket({
          dataDirection: DataDirection.HostToDevice,
          type: SetupType.Class,
          recipient: SetupRecipient.Interface,
          bRequest: 0x22, // SET_CONTROL_LINE_STATE
          wValue: value,
          wIndex: interfaceNumber,
          wLength: 0,
        }),
      );
      this.initialized = true;
    };
    // PATCH 10 (USBCDC's OUT endpoint): rp2040js's host answers every OUT
    // buffer the device makes available at once, with a zero-length packet
    // when it has nothing to send; TinyGo makes the buffer available again in
    // its interrupt handler, so the CPU spends its time in the USB interrupt
    // (a BUFF_STATUS every 10 us). A real host NAKs until it has data: here
    // the read waits until the host side has bytes to send (it never has: the
    // protocol has no console input).
    const usb = m.mcu.usbCtrl;
    const onEndpointRead = usb.onEndpointRead;
    this.pendingRead = null;
    usb.onEndpointRead = (endpoint, size) => {
      if (endpoint === cdc.outEndpoint && cdc.txFIFO.empty) {
        this.pendingRead = { endpoint, size };
        return;
      }
      onEndpointRead(endpoint, size);
    };
    // PATCH 11 (RPUSBController IN completion): rp2040js marks an IN buffer
    // done (BUFF_STATUS) the moment the CPU hands it over, before the host
    // has taken it (10 us later). TinyGo's handler sends the next CDC packet
    // from inside its BUFF_STATUS handling and then clears the BUFF_STATUS
    // bits it read, which wipes the early "done" of the packet it just sent:
    // the CDC stops after two packets and USBCDC.Write blocks for ever once
    // its ring is full. Here an IN buffer is marked done when the host takes
    // it (rp2040js's endpoint write alarm), as on the chip.
    const indicateBufferReady = usb.indicateBufferReady.bind(usb);
    const DPRAMUpdated = usb.DPRAMUpdated.bind(usb);
    const deferredIn = new Set();
    let inDPRAMUpdate = false;
    usb.DPRAMUpdated = (offset, value) => {
      inDPRAMUpdate = true;
      try {
        DPRAMUpdated(offset, value);
      } finally {
        inDPRAMUpdate = false;
      }
    };
    usb.indicateBufferReady = (endpoint, out) => {
      if (!out && inDPRAMUpdate) {
        deferredIn.add(endpoint);
        return;
      }
      indicateBufferReady(endpoint, out);
    };
    const onEndpointWrite = usb.onEndpointWrite;
    usb.onEndpointWrite = (endpoint, buffer) => {
      // The host ACKed the packet: SIE_STATUS.ACK_REC, which TinyGo's
      // SET_ADDRESS handler waits for (570 us, then it stalls EP0).
      usb.sieStatus |= 1 << 30;
      if (deferredIn.delete(endpoint)) indicateBufferReady(endpoint, false);
      onEndpointWrite(endpoint, buffer);
    };
    cdc.onDeviceConnected = () => trace('USB CDC connected');
    cdc.onSerialData = (bytes) => this.bytes(bytes);
  }

  bytes(bytes) {
    for (const b of bytes) {
      if (b === 0x0a) {
        let text = Buffer.from(this.line).toString('utf8');
        if (text.endsWith('\r')) text = text.slice(0, -1);
        this.line = [];
        send({ t: 'console', at: boardNow(), line: text });
      } else {
        this.line.push(b);
        if (this.line.length > 1 << 16) {
          send({ t: 'console', at: boardNow(), line: Buffer.from(this.line).toString('utf8') });
          this.line = [];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// GPIO outputs: a "gpio" line when a pin the chip drives (SIO, or any
// function that drives it) changes level, or starts driving at a level other
// than the last one reported. A pin that stops driving is not reported. The
// gSPI's data and clock pins (24, 29) are not reported.
class GPIOReporter {
  constructor(m) {
    this.last = new Array(30).fill(-1);
    m.mcu.gpio.forEach((pin, i) => {
      if (i === GSPI_DATA_PIN || i === GSPI_CLK_PIN) return;
      pin.addListener((state) => {
        if (state !== GPIOPinState.Low && state !== GPIOPinState.High) return;
        const v = state === GPIOPinState.High ? 1 : 0;
        if (this.last[i] === v) return;
        this.last[i] = v;
        send({ t: 'gpio', at: boardNow(), pin: i, value: v });
      });
    });
  }
}

// ---------------------------------------------------------------------------
// The run loop.

function reset() {
  const why = machine.pendingReset;
  const at = boardNow();
  send({ t: 'reset', at, why });
  trace(`reset (${why}) at ${at} ns`);
  bootOffsetNs = at;
  cyclesBefore += machine.core.cycles;
  resetCount++;
  machine = new Machine();
}

function runUntil(until) {
  for (;;) {
    const m = machine;
    const { core, clock, romHooks } = m;
    const localUntil = until - bootOffsetNs;
    while (m.pendingReset === null && clock.nanosCounter < localUntil) {
      const now = clock.nanosCounter;
      if (m.stallUntil > now) {
        // Inside a ROM flash function: time passes, the CPU does not run.
        clock.tick(Math.min(m.stallUntil, localUntil) - now);
        continue;
      }
      if (core.waiting) {
        // WFI/WFE: skip to the next alarm (timer, DMA, USB...), never past until.
        const next = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
        if (profile !== null) {
          profileIdle++;
          if (next <= now) profile.set('idle at an alarm due now', (profile.get('idle at an alarm due now') ?? 0) + 1);
        }
        clock.tick(Math.max(0, Math.min(next, localUntil) - now));
        continue;
      }
      const pc = core.registers[15];
      if (pc < 0x4000) {
        const hook = romHooks.get(pc);
        if (hook) {
          hook();
          clock.tick(4 * NS_PER_CYCLE);
          continue;
        }
      }
      if (profile !== null && ++profileTick % 997 === 0) {
        profile.set(pc, (profile.get(pc) ?? 0) + 1);
      }
      const cycles = core.executeInstruction();
      clock.tick(cycles * NS_PER_CYCLE);
      if (m.pioStepping) {
        for (const pio of m.pioSteps) pio.step();
      }
    }
    if (m.pendingReset !== null) {
      reset();
      continue;
    }
    return;
  }
}

// --profile: a sample of the PCs executed, printed to stderr at the end.
const profile = opts.profile ? new Map() : null;
let profileTick = 0;
let profileIdle = 0;
function printProfile() {
  if (!profile) return;
  const total = [...profile.values()].reduce((a, b) => a + b, 0);
  const top = [...profile.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40);
  process.stderr.write(`runner: PC profile (${total} samples, ${profileIdle} idle skips)\n`);
  for (const [pc, n] of top) {
    process.stderr.write(`  ${typeof pc === 'number' ? hex(pc) : pc} ${((100 * n) / total).toFixed(1)}%\n`);
  }
}

let shuttingDown = false;
function shutdown(code, why) {
  if (shuttingDown) return;
  shuttingDown = true;
  if (why) trace(why);
  printProfile();
  try {
    flush();
  } catch {
    // stdout gone: nothing to tell
  }
  try {
    fs.writeSync(flashFd, flashImage, 0, FLASH_SIZE, 0);
    fs.closeSync(flashFd);
  } catch (e) {
    process.stderr.write(`runner: saving ${opts.flash}: ${e.message}\n`);
    code = code || 1;
  }
  process.exit(code);
}

function main() {
  machine = new Machine();
  trace(`ready after ${(performance.now() / 1000).toFixed(3)} s`);
  send({ t: 'ready' });
  const wallStart = process.hrtime.bigint();
  for (;;) {
    const msg = readMessage();
    if (msg === null) shutdown(0, 'stdin closed');
    switch (msg.t) {
      case 'run': {
        const until = Number(msg.until);
        if (!Number.isFinite(until)) {
          process.stderr.write(`runner: run without a numeric until: ${JSON.stringify(msg)}\n`);
          break;
        }
        runUntil(until);
        // Idle (WFI/WFE) at the stop: nothing the Go side does wakes the CPU
        // (the driver polls the chip; there is no console input), so it may
        // leave the board alone until its next alarm. Infinity: none.
        const stop = { t: 'stopped', at: boardNow() };
        if (machine.core.waiting && machine.pendingReset === null && machine.stallUntil <= machine.clock.nanosCounter) {
          const next = machine.clock.nextAlarm ? machine.clock.nextAlarm.nanos : Infinity;
          stop.idle = Number.isFinite(next) ? Math.floor(bootOffsetNs + next) : Number.MAX_SAFE_INTEGER;
        }
        send(stop);
        if (opts.trace) {
          const wall = Number(process.hrtime.bigint() - wallStart) / 1e9;
          const busy = (cyclesBefore + machine.core.cycles) / 125e6;
          trace(
            `board ${(boardNow() / 1e9).toFixed(3)} s (${busy.toFixed(3)} s of it executing) after ${wall.toFixed(3)} s wall` +
              ` (${(Number(cmdWaitNs) / 1e9).toFixed(3)} s of it waiting for cmd answers)`,
          );
        }
        break;
      }
      case 'quit':
        shutdown(0, 'quit');
        break;
      default:
        process.stderr.write(`runner: unknown message ${JSON.stringify(msg)}: ignored\n`);
    }
  }
}

main();
