// Readers and writers never hang, abort or allocate without bound on what the file system hands them: /dev/zero, a
// FIFO, a directory, a gzip bomb, a safetensors header listing a million tensors; save() never replaces a device
// node, a FIFO or a directory, and writes through a symbolic link to its target. Every error names the file.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { data, nn, save, load, TorchError } from '../lib/index.js';
import { MAX_TENSORS } from '../lib/serialize.js';
import { noLeak } from './support/helpers.js';

let dir: string;
let fifo: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tn-bounded-'));
  fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]); // nobody ever writes to it: opening it for reading blocks, reading it never ends
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An IDX header: uint8, the given dims. */
function idxHeader(dims: number[]): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h[2] = 0x08;
  h[3] = dims.length;
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return h;
}

describe('readers take regular files only', () => {
  const cases: [string, () => string, string][] = [
    ['/dev/zero', () => '/dev/zero', 'it is a character device, not a regular file'],
    ['a FIFO', () => fifo, 'it is a FIFO (named pipe), not a regular file'],
    ['a directory', () => dir, 'it is a directory, not a regular file'],
  ];
  for (const [name, path, why] of cases) {
    it(`readIdx of ${name}: an error naming it, at once`, () => {
      const t0 = performance.now();
      expect(() => data.readIdx(path())).toThrow(`readIdx: cannot read ${path()}: ${why}`);
      expect(performance.now() - t0).toBeLessThan(2000);
    });
    it(`checkpoint load of ${name}: an error naming it, at once`, () => {
      expect(() => load(path())).toThrow(`safetensors: cannot read ${path()}: ${why}`);
    });
  }
  it('fashionMnist from a folder whose files are FIFOs: an error, not a hang', () => {
    const root = join(dir, 'fm');
    mkdirSync(root);
    execFileSync('mkfifo', [join(root, 'train-images-idx3-ubyte'), join(root, 'train-labels-idx1-ubyte')]);
    expect(() => data.fashionMnist({ root })).toThrow('it is a FIFO (named pipe), not a regular file');
  });
});

describe('gzip is inflated no further than the header declares', () => {
  it('a gzip bomb (an IDX header for 10 bytes, then 64 MiB of zeros, 64 KiB gzipped) stops at the declared 18 bytes', () => {
    const file = join(dir, 'bomb-idx1-ubyte.gz');
    const bomb = gzipSync(Buffer.concat([idxHeader([10]), Buffer.alloc(64 * 2 ** 20)]));
    expect(bomb.length).toBeLessThan(2 ** 17);
    writeFileSync(file, bomb);
    const rss0 = process.memoryUsage().rss;
    expect(() => data.readIdx(file)).toThrow(
      `readIdx: ${file} inflates to more than 18 bytes, more than its contents can be (a gzip bomb, or trailing data)`,
    );
    // nothing near the 64 MiB the stream expands to was allocated
    expect(process.memoryUsage().rss - rss0).toBeLessThan(32 * 2 ** 20);
  });
  it('a gzipped file with a bad IDX header is refused from its first bytes, without inflating the rest (2.5 GiB here)', () => {
    const file = join(dir, 'badmagic-idx1-ubyte.gz');
    // gzip members concatenate (RFC 1952 2.2): 40 copies of 64 MiB of zeros inflate to 2.5 GiB, over the 2 GiB cap.
    const zeros = gzipSync(Buffer.alloc(64 * 2 ** 20), { level: 9 });
    writeFileSync(
      file,
      Buffer.concat([gzipSync(Buffer.from([1, 2, 3, 4])), ...Array.from({ length: 40 }, () => zeros)]),
    );
    const rss0 = process.memoryUsage().rss;
    const t0 = Date.now();
    expect(() => data.readIdx(file)).toThrow(`readIdx: ${file} is not a valid IDX file: bad magic number 0x01020304`);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * 2 ** 20);
    expect(Date.now() - t0).toBeLessThan(3000); // 4.5 s when it inflated 2 GiB
  });
  it('an honest gzipped IDX file still reads, and a truncated one says so', () => {
    const file = join(dir, 'ok-idx1-ubyte.gz');
    writeFileSync(file, gzipSync(Buffer.concat([idxHeader([3]), Buffer.from([7, 8, 9])])));
    expect(Array.from(data.readIdx(file).data)).toEqual([7, 8, 9]);
    const short = join(dir, 'short-idx1-ubyte.gz');
    writeFileSync(short, gzipSync(Buffer.concat([idxHeader([5]), Buffer.from([1, 2])])));
    expect(() => data.readIdx(short)).toThrow(
      `readIdx: ${short} is not a valid IDX file: truncated: shape [5] needs 13 bytes but the file has 10`,
    );
  });
});

describe('safetensors headers are bounded', () => {
  it(`a header listing a million empty tensors is refused (at most ${MAX_TENSORS}) before any tensor is made`, async () => {
    const file = join(dir, 'million.safetensors');
    const parts: string[] = [];
    for (let i = 0; i < 1_000_000; i++) parts.push(`"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
    const head = Buffer.from(`{${parts.join(',')}}`);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(head.length));
    writeFileSync(file, Buffer.concat([len, head]));
    await noLeak(() => {
      const t0 = performance.now();
      expect(() => load(file)).toThrow(
        `${file} is not a valid safetensors file: the header lists more than ${MAX_TENSORS} tensors`,
      );
      expect(performance.now() - t0).toBeLessThan(10_000);
    });
    // Counted before the JSON is parsed: the same entries with broken JSON at the end still say 'more than ... tensors'.
    const broken = join(dir, 'million-broken.safetensors');
    const bhead = Buffer.from(`{${parts.join(',')},"x":}`);
    len.writeBigUInt64LE(BigInt(bhead.length));
    writeFileSync(broken, Buffer.concat([len, bhead]));
    expect(() => load(broken)).toThrow(
      `${broken} is not a valid safetensors file: the header lists more than ${MAX_TENSORS} tensors`,
    );
  });
  it('a shape nested 100,000 levels deep is a BAD_FILE error naming the file (was: Maximum call stack size exceeded)', async () => {
    const file = join(dir, 'deep.safetensors');
    const depth = 100_000;
    const head = Buffer.from(
      `{"w":{"dtype":"F32","shape":${'['.repeat(depth)}${']'.repeat(depth)},"data_offsets":[0,0]}}`,
    );
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(head.length));
    writeFileSync(file, Buffer.concat([len, head]));
    await noLeak(() => {
      let err: unknown;
      try {
        load(file);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TorchError);
      expect((err as TorchError).code).toBe('BAD_FILE');
      expect((err as Error).message).toBe(
        `${file} is not a valid safetensors file: tensor 'w' has shape [[...]], not an array of non-negative integers`,
      );
    });
  });
  it('the entry count skips strings: names and metadata holding commas, braces and escaped quotes still load', () => {
    const file = join(dir, 'tricky.safetensors');
    const head = Buffer.from(
      JSON.stringify({
        __metadata__: { 'a,b': '},{"x":1,', c: 'd\\",' },
        'w,{': { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      }),
    );
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(head.length));
    writeFileSync(file, Buffer.concat([len, head, Buffer.from(new Float32Array([2.5]).buffer)]));
    const ck = load(file);
    try {
      expect(ck.tensors.get('w,{')!.dataSync()).toEqual([2.5]);
      expect(ck.metadata).toEqual({ 'a,b': '},{"x":1,', c: 'd\\",' });
    } finally {
      ck.dispose();
    }
  });
});

describe('save() and special files', () => {
  const model = (): nn.Linear => new nn.Linear(2, 2);
  it('refuses to replace a device node, a FIFO or a directory, which stay as they were', async () => {
    await noLeak(() => {
      const m = model();
      expect(() => save('/dev/null', { model: m })).toThrow(
        'safetensors: refusing to replace /dev/null: it is a character device, not a regular file',
      );
      expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
      expect(() => save(fifo, { model: m })).toThrow(
        `safetensors: refusing to replace ${fifo}: it is a FIFO (named pipe), not a regular file`,
      );
      expect(lstatSync(fifo).isFIFO()).toBe(true);
      const sub = join(dir, 'a-folder');
      mkdirSync(sub);
      expect(() => save(sub, { model: m })).toThrow(
        `safetensors: refusing to replace ${sub}: it is a directory, not a regular file`,
      );
      m.dispose();
    });
  });
  it('writes through a symbolic link to its target, atomically; the link stays a link; a dangling link is refused', async () => {
    await noLeak(() => {
      const m = model();
      const target = join(dir, 'real.safetensors');
      const link = join(dir, 'latest.safetensors');
      writeFileSync(target, 'old contents');
      symlinkSync(target, link);
      save(link, { model: m, epoch: 7 });
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readFileSync(target).subarray(0, 12).toString()).not.toBe('old contents');
      const ck = load(link);
      expect(ck.meta.epoch).toBe(7);
      ck.dispose();
      const dangling = join(dir, 'dangling.safetensors');
      symlinkSync(join(dir, 'nowhere', 'x.safetensors'), dangling);
      expect(() => save(dangling, { model: m })).toThrow(
        `safetensors: ${dangling} is a symbolic link whose target does not exist`,
      );
      m.dispose();
    });
  });
});
