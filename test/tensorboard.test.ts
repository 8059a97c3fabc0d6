// tensorboard.SummaryWriter (issue 22): the event files read back by an independent decoder (test/support/tfevents.ts,
// written from the TFRecord format and the .proto schemas, not from lib/tensorboard), by TensorBoard's own
// EventAccumulator where the tensorboard package is installed (TENSORNORMAL_TENSORBOARD_PYTHONPATH, default
// /opt/tn-tensorboard, which .ci/run fills with pip; otherwise those tests skip saying so), and against the bytes
// PyTorch's torch.utils.tensorboard writes for the same calls.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { crc32c, maskedCrc32c } from '../lib/tensorboard/crc32c.js';
import { crc32cBitwise, decodeHparams, mask, readEventFile, records, type DecodedEvent } from './support/tfevents.js';
import { noLeak } from './support/helpers.js';

const { SummaryWriter, readScalars, EventFileFollower } = torch.tensorboard;
const PYTHON = '/usr/bin/python3';
const TB_PATH = process.env.TENSORNORMAL_TENSORBOARD_PYTHONPATH ?? '/opt/tn-tensorboard';
const SCRIPT = join(import.meta.dirname, 'reference', 'tensorboard_check.py');

function hasTensorboard(): boolean {
  if (!existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import tensorboard.backend.event_processing.event_accumulator'], {
    env: { ...process.env, PYTHONPATH: TB_PATH },
    encoding: 'utf8',
  });
  return r.status === 0;
}
const tensorboardHere = hasTensorboard();
if (!tensorboardHere)
  console.warn(
    `tensorboard.test.ts: TensorBoard's own loader is not installed (python3 -c 'import tensorboard' failed with PYTHONPATH=${TB_PATH}); ` +
      'the tests against it are skipped. Install it with: /usr/bin/python3 -m pip install --target /opt/tn-tensorboard --no-deps tensorboard "protobuf>=6.31.1,<8" absl-py',
  );

function py(args: string[]): string {
  const r = spawnSync(PYTHON, [SCRIPT, ...args], { env: { ...process.env, PYTHONPATH: TB_PATH }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tensorboard_check.py ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

let root = '';
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tn-tensorboard-'));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const eventFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .map((f) => join(dir, f));

function only(dir: string): DecodedEvent[] {
  const files = eventFiles(dir);
  expect(files.length).toBe(1);
  return readEventFile(files[0]!);
}

describe('CRC-32C and the record mask', () => {
  it('the standard check value, on both implementations, and the mask', () => {
    const check = new TextEncoder().encode('123456789');
    // CRC-32C's published check value (RFC 3720 / the CRC catalogue)
    expect(crc32cBitwise(check)).toBe(0xe3069283);
    expect(crc32c(check)).toBe(0xe3069283);
    // RFC 3720 B.4: 32 bytes of zeros -> 0x8a9136aa; 32 bytes of 0xff -> 0x62a8ab43
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    for (const n of [0, 1, 7, 300]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
      expect(maskedCrc32c(b)).toBe(mask(crc32cBitwise(b)));
    }
  });
});

describe('SummaryWriter', () => {
  it('addScalar: a file_version event, then one event per value, every CRC right, values as float32', () =>
    noLeak(() => {
      const dir = join(root, 'scalars');
      const w = new SummaryWriter(dir);
      expect(w.getLogdir()).toBe(dir);
      w.addScalar('loss/train', 0.1, 0, 1000.25);
      w.addScalar('loss/train', 2.5, 1);
      torch.tidy(() => w.addScalar('loss/train', torch.tensor(-7.125), 2)); // a one-element tensor
      w.addScalar('accuracy', NaN, 3);
      w.addScalar('big step', 1, 2 ** 40);
      w.close();
      expect(() => w.addScalar('late', 1)).toThrow(/is closed/);
      const files = eventFiles(dir);
      expect(files.length).toBe(1);
      expect(files[0]).toMatch(/events\.out\.tfevents\.\d{10}\.[^/]+\.\d+\.\d+$/);
      for (const r of records(files[0]!)) expect([r.lengthCrcOk, r.dataCrcOk]).toEqual([true, true]);
      const ev = readEventFile(files[0]!);
      expect(ev[0]!.fileVersion).toBe('brain.Event:2');
      expect(ev[0]!.values).toEqual([]);
      const s = ev.slice(1).map((e) => [e.values[0]!.tag, e.step, e.values[0]!.simpleValue]);
      expect(s).toEqual([
        ['loss/train', 0, Math.fround(0.1)],
        ['loss/train', 1, 2.5],
        ['loss/train', 2, -7.125],
        ['accuracy', 3, NaN],
        ['big step', 2 ** 40, 1],
      ]);
      expect(ev[1]!.wallTime).toBe(1000.25);
      const now = Date.now() / 1000;
      expect(Math.abs(ev[2]!.wallTime - now)).toBeLessThan(60);
      // the library's reader reads the same
      expect(readScalars(files[0]!).map((p) => [p.tag, p.step, p.value])).toEqual(s);
    }));

  it('bad arguments: TypeError / RangeError naming them', () => {
    const w = new SummaryWriter(join(root, 'bad'));
    expect(() => w.addScalar('', 1)).toThrow(
      new TypeError('Expected a non-empty string for tag but received "" of type string'),
    );
    expect(() => w.addScalar('x', '1' as never)).toThrow(TypeError);
    expect(() => w.addScalar('x', 1, -1)).toThrow(/globalStep/);
    expect(() => w.addScalar('x', 1, 1.5)).toThrow(/globalStep/);
    expect(() => torch.tidy(() => w.addScalar('x', torch.ones(2)))).toThrow(/one-element tensor, got shape \[2\]/);
    expect(() => w.addHistogram('h', [NaN, Infinity])).toThrow(/no finite value/);
    expect(() => w.addHparams({ lr: [1] as never }, {})).toThrow(/hparams\.lr/);
    expect(() => new SummaryWriter(join(root, 'bad2'), { maxQueue: 0 })).toThrow(/maxQueue/);
    w.close();
  });

  it('addHistogram: numpy-style equal-width buckets, hand-computed', () =>
    noLeak(() => {
      const dir = join(root, 'histo');
      const w = new SummaryWriter(dir);
      // 1..10 in 3 buckets of width 3: [1, 4) [4, 7) [7, 10] -> 3, 3, 4
      torch.tidy(() => w.addHistogram('weights', torch.arange(1, 11).reshape([2, 5]), 5, 3));
      // a constant: numpy widens the range to [x - 0.5, x + 0.5]: 4 buckets of width 0.25 from 1.5, and 2 falls in
      // the third, [2, 2.25); the empty buckets at the ends are trimmed, and NaN is left out
      w.addHistogram('const', [2, 2, 2, NaN], 6, 4);
      w.close();
      const ev = only(dir);
      expect(ev[1]!.step).toBe(5);
      expect(ev[1]!.values[0]!.tag).toBe('weights');
      expect(ev[1]!.values[0]!.histo).toEqual({
        min: 1,
        max: 10,
        num: 10,
        sum: 55,
        sumSquares: 385,
        bucketLimit: [4, 7, 10],
        bucket: [3, 3, 4],
      });
      expect(ev[2]!.values[0]!.histo).toEqual({
        min: 2,
        max: 2,
        num: 3,
        sum: 6,
        sumSquares: 12,
        bucketLimit: [2.25],
        bucket: [3],
      });
    }));

  it('addText: PyTorch\'s text summary (plugin "text", a DT_STRING tensor of shape [1])', () => {
    const dir = join(root, 'text');
    const w = new SummaryWriter(dir);
    w.addText('notes', 'lr **1e-3**, ünïcode', 3);
    w.close();
    const v = only(dir)[1]!.values[0]!;
    expect(v.tag).toBe('notes/text_summary');
    expect(v.pluginName).toBe('text');
    expect(v.tensor).toEqual({ dtype: 7, shape: [1], stringVal: ['lr **1e-3**, ünïcode'] });
  });

  it('addScalars writes one run per key under the main tag; addHparams a run of its own', () => {
    const dir = join(root, 'multi');
    const w = new SummaryWriter(dir);
    w.addScalars('loss', { train: 1.5, val: 2.5 }, 4);
    w.addScalars('loss', { train: 1.25, val: 2.25 }, 5);
    w.addHparams({ lr: 0.001, optimizer: 'tnt', warm: true }, { 'hparam/loss': 0.5 }, { runName: 'hp' });
    w.close();
    for (const [key, vals] of [
      ['train', [1.5, 1.25]],
      ['val', [2.5, 2.25]],
    ] as const) {
      const ev = only(join(dir, `loss_${key}`)).slice(1);
      expect(ev.map((e) => [e.step, e.values[0]!.tag, e.values[0]!.simpleValue])).toEqual([
        [4, 'loss', vals[0]],
        [5, 'loss', vals[1]],
      ]);
    }
    const hp = only(join(dir, 'hp')).slice(1);
    expect(hp.map((e) => e.values[0]!.tag)).toEqual([
      '_hparams_/experiment',
      '_hparams_/session_start_info',
      '_hparams_/session_end_info',
      'hparam/loss',
    ]);
    for (const e of hp.slice(0, 3)) expect(e.values[0]!.pluginName).toBe('hparams');
    const [exp, start, end] = hp.slice(0, 3).map((e) => decodeHparams(e.values[0]!.pluginContent!));
    expect(exp!.experiment).toEqual({
      hparams: [
        { name: 'lr', type: 3 },
        { name: 'optimizer', type: 1 },
        { name: 'warm', type: 2 },
      ],
      metrics: ['hparam/loss'],
    });
    expect(start!.start).toEqual({ hparams: { lr: 0.001, optimizer: 'tnt', warm: true } });
    expect(end!.end).toEqual({ status: 1 });
    expect(hp[3]!.values[0]!.simpleValue).toBe(0.5);
  });

  it('events are written when maxQueue are pending, on flush(), and by the flushSecs timer', async () => {
    const dir = join(root, 'queue');
    const w = new SummaryWriter(dir, { maxQueue: 3, flushSecs: 0.2 });
    const file = eventFiles(dir)[0]!;
    expect(readEventFile(file).length).toBe(1); // the file_version event at once
    w.addScalar('a', 1, 1);
    w.addScalar('a', 2, 2);
    expect(readEventFile(file).length).toBe(1);
    w.addScalar('a', 3, 3); // the third pending event
    expect(readEventFile(file).length).toBe(4);
    w.addScalar('a', 4, 4);
    w.flush();
    expect(readEventFile(file).length).toBe(5);
    w.addScalar('a', 5, 5);
    await new Promise((r) => setTimeout(r, 600));
    expect(readEventFile(file).length).toBe(6);
    w.close();
  });

  it('EventFileFollower reads what was completed since its last read, leaves a partial record, refuses a bad CRC', () => {
    const dir = join(root, 'follow');
    const w = new SummaryWriter(dir, { maxQueue: 1 });
    const file = eventFiles(dir)[0]!;
    const f = new EventFileFollower(file);
    w.addScalar('x', 1, 1);
    expect(f.read().map((p) => p.value)).toEqual([1]);
    expect(f.read()).toEqual([]);
    w.addScalar('x', 2, 2);
    w.close();
    const whole = readFileSync(file);
    // the same file written in two halves: the half record waits for the rest
    const copy = join(dir, 'copy.tfevents');
    const cut = whole.length - 10;
    writeFileSync(copy, whole.subarray(0, cut));
    const g = new EventFileFollower(copy);
    expect(g.read().map((p) => p.value)).toEqual([1]);
    appendFileSync(copy, whole.subarray(cut));
    expect(g.read().map((p) => p.value)).toEqual([2]);
    expect(f.read().map((p) => p.value)).toEqual([2]);
    const bad = Buffer.from(whole);
    bad[bad.length - 6] = bad[bad.length - 6]! ^ 0xff; // a byte of the last record's data
    writeFileSync(copy, bad);
    expect(() => readScalars(copy)).toThrow(/data CRC mismatch/);
  });
});

describe.skipIf(!tensorboardHere)("TensorBoard's own loader and PyTorch's writer", () => {
  it('EventAccumulator reads the scalars, histograms, text and hparams', () => {
    const dir = join(root, 'tb');
    const w = new SummaryWriter(dir);
    for (let s = 0; s < 5; s++) w.addScalar('loss/train', 1 / (s + 1), s);
    w.addHistogram('w', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2, 3);
    w.addText('notes', 'hello', 1);
    w.close();
    const tb = JSON.parse(py(['load', dir])) as {
      scalars: Record<string, [number, number][]>;
      histograms: Record<
        string,
        { step: number; min: number; max: number; num: number; sum: number; bucket_limit: number[]; bucket: number[] }[]
      >;
      text: Record<string, [number, string[]][]>;
    };
    expect(tb.scalars['loss/train']).toEqual([0, 1, 2, 3, 4].map((s) => [s, Math.fround(1 / (s + 1))]));
    expect(tb.histograms['w']).toEqual([
      { step: 2, min: 1, max: 10, num: 10, sum: 55, bucket_limit: [4, 7, 10], bucket: [3, 3, 4] },
    ]);
    expect(tb.text['notes/text_summary']).toEqual([[1, ['hello']]]);
    const hpDir = join(root, 'tbhp');
    const h = new SummaryWriter(hpDir);
    h.addHparams({ lr: 0.01, optimizer: 'adam' }, { 'final/loss': 0.25 }, { runName: 'run' });
    h.close();
    const hp = JSON.parse(py(['load', join(hpDir, 'run')])) as { hparams: unknown; scalars: unknown };
    expect(hp.hparams).toEqual({
      experiment: {
        hparams: [
          ['lr', 3],
          ['optimizer', 1],
        ],
        metrics: ['final/loss'],
      },
      start: { lr: 0.01, optimizer: 'adam' },
      end: 1,
    });
    expect(hp.scalars).toEqual({ 'final/loss': [[0, 0.25]] });
  });

  it("addScalar's records are byte for byte torch.utils.tensorboard's", () => {
    const ptDir = join(root, 'pytorch');
    py(['pytorch', ptDir]);
    const ours = join(root, 'ours');
    const w = new SummaryWriter(ours);
    w.addScalar('loss/train', 0.125, 7, 1234.5);
    w.addScalar('loss/train', -3.75, 123456789, 1234.75);
    w.close();
    const theirs = records(eventFiles(ptDir)[0]!);
    const mine = records(eventFiles(ours)[0]!);
    expect(theirs.length).toBe(3);
    // the first record is each writer's file_version event (PyTorch adds its source_metadata); the scalars match
    expect(Buffer.from(mine[1]!.data).toString('hex')).toBe(Buffer.from(theirs[1]!.data).toString('hex'));
    expect(Buffer.from(mine[2]!.data).toString('hex')).toBe(Buffer.from(theirs[2]!.data).toString('hex'));
    const whole = (f: string): Buffer => readFileSync(f);
    const tail = (b: Buffer, n: number): string => b.subarray(b.length - n).toString('hex');
    const n = 2 * (12 + mine[1]!.data.length + 4);
    expect(tail(whole(eventFiles(ours)[0]!), n)).toBe(tail(whole(eventFiles(ptDir)[0]!), n));
  });
});
