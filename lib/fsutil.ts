/**
 * Opening files for the readers and writers (datasets, safetensors, checkpoints) so that no file can hang, abort or
 * exhaust the process: only regular files are read (a FIFO would block the open or the read forever, /dev/zero never
 * ends, a directory is no file), the size fstat reports bounds every read, and gzip is inflated under a cap.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  realpathSync,
  statSync,
  type Stats,
} from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** What a file system entry is, in words, for messages. */
export function kindOf(s: Stats): string {
  if (s.isFile()) return 'a regular file';
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  if (s.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/**
 * Opens a regular file for reading and returns its descriptor and size. The open is non-blocking, so a FIFO cannot
 * hang it, and what was opened is checked with fstat (no race with a stat before the open). Errors name the file,
 * prefixed with `who`.
 */
export function openRegular(path: string, who: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(
      `${who}: cannot read ${path}: ${e.code === 'ENOENT' ? 'file not found' : e.code === 'EISDIR' ? 'is a directory, not a file' : e.message}`,
      { cause: err },
    );
  }
  const s = fstatSync(fd);
  if (!s.isFile()) {
    closeSync(fd);
    throw new Error(`${who}: cannot read ${path}: it is ${kindOf(s)}, not a regular file`);
  }
  return { fd, size: s.size };
}

/** Reads a whole regular file (at most the size fstat reported when it was opened). */
export function readRegular(path: string, who: string): Buffer {
  const { fd, size } = openRegular(path, who);
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break; // shrank while reading
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** deflate never expands more than 1032:1 (zlib's technical details: the longest match, 258 bytes, in two bits). */
export const DEFLATE_MAX_RATIO = 1032;
/** The most any gzip member is inflated to by the readers: 2 GiB. */
export const MAX_INFLATED = 2 ** 31;

/**
 * Inflates a gzip stream to at most `cap` bytes (and never more than MAX_INFLATED): a longer output is a 'gzip bomb'
 * error naming the file instead of an allocation the size of whatever the stream expands to.
 */
export function gunzipCapped(raw: Uint8Array, cap: number, path: string, who: string): Buffer {
  const limit = Math.min(cap, MAX_INFLATED);
  try {
    return gunzipSync(raw, { maxOutputLength: Math.max(limit, 1) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError)
      throw new Error(
        `${who}: ${path} inflates to more than ${limit} bytes, more than its contents can be (a gzip bomb, or trailing data)`,
        { cause: err },
      );
    throw new Error(`${who}: ${path} is a corrupt or truncated gzip file (${e.message})`, { cause: err });
  }
}

/**
 * The first bytes of a gzip stream's output (at most about `want` bytes; fewer if the stream is shorter): inflates
 * growing prefixes of the input, which bounds the output by DEFLATE_MAX_RATIO times the prefix.
 */
export function gunzipHead(raw: Uint8Array, want: number): Buffer {
  for (let take = 64; ; take *= 4) {
    const prefix = raw.subarray(0, Math.min(take, raw.length));
    let out: Buffer;
    try {
      out = gunzipSync(prefix, {
        finishFlush: 2 /* Z_SYNC_FLUSH: what a prefix gives, without the trailer */,
        maxOutputLength: Math.max(want, take * DEFLATE_MAX_RATIO),
      });
    } catch {
      out = Buffer.alloc(0);
    }
    if (out.length >= want || prefix.length === raw.length) return out;
  }
}

/**
 * Where a save to `path` must write: the path itself, or the target of a symbolic link at `path` (the link stays a
 * link). An existing target that is not a regular file (a device such as /dev/null, a FIFO, a directory, a socket)
 * is refused: replacing it by rename would delete a device node or a pipe.
 */
export function saveTarget(path: string, who: string): string {
  let target = path;
  let l: Stats;
  try {
    l = lstatSync(path);
  } catch {
    return path; // does not exist: a new file
  }
  if (l.isSymbolicLink()) {
    try {
      target = realpathSync(path);
    } catch {
      throw new Error(
        `${who}: ${path} is a symbolic link whose target does not exist (a dangling link is not written through)`,
      );
    }
  }
  const s = target === path ? l : statSync(target);
  if (!s.isFile())
    throw new Error(
      `${who}: refusing to replace ${target === path ? path : `${target} (the target of ${path})`}: it is ${kindOf(s)}, not a regular file`,
    );
  return target;
}
