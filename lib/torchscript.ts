/**
 * TorchScript archives from strangers, before libtorch sees them (jit.load) or instead of libtorch (jit.loadWeights).
 *
 * libtorch's loader trusts the archive: a tensor whose sizes reach past its storage is built as it says (reads and
 * writes out of bounds), and its parser and compiler recurse once per level of an expression (a `return` of 6,000
 * nested parentheses, 6,000 unary minus signs or 10,000 terms of a sum ends Python and Node with SIGSEGV on an 8 MB
 * stack; a worker thread's stack is smaller). checkTorchScript refuses such files first, reading only what it needs
 * and within bounds (see lib/pickle.ts): every pickle of the archive (data.pkl, constants.pkl, the .debug_pkl files)
 * is run as a data structure (nothing executed) that may nest at most MAX_PICKLE_DEPTH levels, every tensor in it
 * must lie inside its storage and its storage record must hold it, and the TorchScript source (code/**.py) may nest
 * brackets at most MAX_CODE_BRACKETS deep and use at most MAX_CODE_OPERATORS operators in one statement (the code
 * TorchScript writes holds one operation a statement). What it cannot see is what libtorch's compiler and
 * interpreter do with valid code: loading runs the archive's code (a class's __setstate__ runs at load), so a file
 * from a stranger should be read with jit.loadWeights, or loaded with { isolate: true } (see lib/jit.ts).
 */
import { closeSync } from 'node:fs';
import { openRegular } from './fsutil.js';
import { TorchError, is } from './errors.js';
import type { Tensor } from './tensor.js';
import {
  DEFAULT_MAX_PICKLE_BYTES,
  ScriptObject,
  TensorSpec,
  Zip,
  archiveRoot,
  defaultMaxBytes,
  materialize,
  unpickle,
  type Bad,
  type ZipEntry,
} from './pickle.js';

/** The deepest bracket nesting accepted in TorchScript source: 200 (Python's own parser stops at 200). */
export const MAX_CODE_BRACKETS = 200;
/** The most operators (and `not`/`and`/`or`/`if`/`else`) in one statement of TorchScript source: 1,000. */
export const MAX_CODE_OPERATORS = 1000;
/** The longest indentation accepted in TorchScript source: 1,000 columns (blocks nested 500 deep). */
export const MAX_CODE_INDENT = 1000;

/** Bounds on reading a TorchScript archive (see its members). */
export interface TorchScriptReadOptions {
  /**
   * The most bytes the archive's records may take together, inflated (libtorch allocates what each declares); a
   * file declaring more is refused unread. Default: a quarter of the machine's memory.
   */
  maxBytes?: number;
  /** The most bytes one pickle of the archive may have. Default 256 MiB. */
  maxPickleBytes?: number;
}

interface Opened {
  zip: Zip;
  root: string;
  record: (name: string) => ZipEntry | undefined;
}

function badFor(path: string): Bad {
  return (what) => new TorchError(`${path} is not a TorchScript file libtorch can load: ${what}`, 'BAD_FILE');
}

/** Opens the archive, checks it, and hands it to `use`; every error a BAD_FILE TorchError naming the file. */
function withArchive<T>(
  path: string,
  options: TorchScriptReadOptions,
  who: string,
  use: (a: Opened, bad: Bad, maxBytes: number) => T,
): T {
  is.string(path, 'path');
  const { maxBytes = defaultMaxBytes(), maxPickleBytes = DEFAULT_MAX_PICKLE_BYTES } = is.options(options);
  is.nonNegativeInteger(maxBytes, 'maxBytes');
  is.nonNegativeInteger(maxPickleBytes, 'maxPickleBytes');
  const bad = badFor(path);
  const { fd, size } = openRegular(path, who);
  try {
    const zip = new Zip(fd, size, bad);
    const root = archiveRoot(zip, bad);
    const record = (name: string): ZipEntry | undefined => zip.find(root + name);
    check({ zip, root, record }, bad, maxBytes, maxPickleBytes);
    return use({ zip, root, record }, bad, maxBytes);
  } catch (err) {
    if (err instanceof TorchError && err.code === 'BAD_FILE') throw err;
    const e = err as Error;
    throw Object.assign(bad(`${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`), { cause: err });
  } finally {
    closeSync(fd);
  }
}

function check(a: Opened, bad: Bad, maxBytes: number, maxPickleBytes: number): void {
  const { zip, root, record } = a;
  if (record('data.pkl') === undefined) {
    if (record('model.json') !== undefined)
      throw bad('it is a legacy TorchScript archive (model.json, PyTorch 1.2 and earlier), which is not checked');
    throw bad('no data.pkl in the archive');
  }
  if (record('constants.pkl') === undefined)
    throw bad('no constants.pkl in the archive (a torch.save file? read it with loadPickledStateDict or loadWeights)');
  let total = 0;
  for (const e of zip.entries) {
    total += e.usize;
    if (total > maxBytes)
      throw bad(`its records declare more than ${maxBytes} bytes (maxBytes; raise it to load this file)`);
  }
  for (const e of zip.entries) {
    const name = e.name.slice(root.length);
    if (name.endsWith('.pkl') || name.endsWith('.debug_pkl')) {
      if (e.usize > maxPickleBytes)
        throw bad(`${name} has ${e.usize} bytes, more than maxPickleBytes (${maxPickleBytes})`);
      if (e !== zip.find(e.name)) continue; // a shadowed duplicate: libtorch reads the other one
      const tensors: TensorSpec[] = [];
      unpickle(zip.data(e), (w) => bad(`${name}: ${w}`), 'torchscript', tensors);
      const dir = name.slice(0, name.lastIndexOf('/') + 1);
      for (const t of tensors) {
        const need = t.storage.numel * t.storage.itemsize;
        let found = false;
        for (const where of [`${dir}data/`, `${dir}constants/`, `${dir}.data/`, 'data/', 'constants/', '.data/']) {
          const r = record(where + t.storage.key);
          if (r === undefined) continue;
          found = true;
          if (r.usize < need)
            throw bad(
              `${name}: storage '${t.storage.key}' has ${r.usize} bytes in ${where}, fewer than its ${t.storage.numel} x ${t.storage.itemsize}`,
            );
        }
        if (!found) throw bad(`${name}: storage '${t.storage.key}' is missing from the archive`);
      }
    } else if (name.startsWith('code/') && name.endsWith('.py')) {
      if (e !== zip.find(e.name)) continue;
      checkCode(zip.data(e).toString('utf8'), (w) => bad(`${name}: ${w}`));
    }
  }
}

/** Bracket nesting, operators a statement and indentation of TorchScript source, skipping strings and comments. */
export function checkCode(text: string, bad: Bad): void {
  let depth = 0,
    ops = 0,
    line = 1,
    col = 0,
    indenting = true;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      line++;
      col = 0;
      indenting = true;
      if (depth === 0) ops = 0;
      continue;
    }
    if (indenting) {
      if (c === 0x20 || c === 0x09) {
        if (++col > MAX_CODE_INDENT) throw bad(`line ${line} is indented more than ${MAX_CODE_INDENT} columns`);
        continue;
      }
      indenting = false;
    }
    if (c === 0x23) {
      // a comment, to the end of the line
      const end = text.indexOf('\n', i);
      i = (end < 0 ? n : end) - 1;
      continue;
    }
    if (c === 0x22 || c === 0x27) {
      // a string: '...', "...", '''...''', """..."""
      const q = text[i]!;
      const triple = text.startsWith(q + q + q, i);
      const close = triple ? q + q + q : q;
      let j = i + close.length;
      while (j < n && !text.startsWith(close, j)) {
        if (text.charCodeAt(j) === 0x5c) j++;
        else if (text.charCodeAt(j) === 0x0a) {
          line++;
          if (!triple) break;
        }
        j++;
      }
      i = j + close.length - 1;
      continue;
    }
    if (c === 0x28 || c === 0x5b || c === 0x7b) {
      if (++depth > MAX_CODE_BRACKETS) throw bad(`line ${line} nests brackets more than ${MAX_CODE_BRACKETS} deep`);
    } else if (c === 0x29 || c === 0x5d || c === 0x7d) {
      if (depth > 0) depth--;
    } else if (c === 0x3b && depth === 0) {
      ops = 0; // ';' ends a statement
    } else if (
      c === 0x2b || // + - * / % @ & | ^ ~ < > = !
      c === 0x2d ||
      c === 0x2a ||
      c === 0x2f ||
      c === 0x25 ||
      c === 0x40 ||
      c === 0x26 ||
      c === 0x7c ||
      c === 0x5e ||
      c === 0x7e ||
      c === 0x3c ||
      c === 0x3e ||
      c === 0x3d ||
      c === 0x21 ||
      ((c === 0x6e || c === 0x61 || c === 0x6f || c === 0x69 || c === 0x65) && keywordAt(text, i))
    ) {
      if (++ops > MAX_CODE_OPERATORS)
        throw bad(`a statement ending on line ${line} or later has more than ${MAX_CODE_OPERATORS} operators`);
    }
  }
}

const KEYWORDS = ['not', 'and', 'or', 'if', 'else'];
function isWordChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}
/** An operator keyword starting at i (a whole word). */
function keywordAt(text: string, i: number): boolean {
  if (i > 0 && isWordChar(text.charCodeAt(i - 1))) return false;
  for (const k of KEYWORDS)
    if (text.startsWith(k, i) && !isWordChar(text.charCodeAt(i + k.length) || 0x20)) return true;
  return false;
}

/**
 * Checks a TorchScript archive without loading it (see the file comment); throws a BAD_FILE TorchError naming the
 * file for what libtorch's loader must not see. jit.load calls it first.
 */
export function checkTorchScript(path: string, options: TorchScriptReadOptions = {}): void {
  withArchive(path, options, 'jit.load', () => undefined);
}

/** Whether a zip archive at `path` is a TorchScript archive (has constants.pkl in its folder); false on any error. */
export function isTorchScriptArchive(path: string): boolean {
  try {
    const { fd, size } = openRegular(path, 'loadWeights');
    try {
      const bad = badFor(path);
      const zip = new Zip(fd, size, bad);
      return zip.find(archiveRoot(zip, bad) + 'constants.pkl') !== undefined;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** Parameter and buffer names of each TorchScript module class, from its source (`__parameters__ = [...]`). */
function classMembers(a: Opened): Map<string, { params: string[]; buffers: string[] }> {
  const out = new Map<string, { params: string[]; buffers: string[] }>();
  for (const e of a.zip.entries) {
    const name = e.name.slice(a.root.length);
    if (!name.startsWith('code/') || !name.endsWith('.py') || e !== a.zip.find(e.name)) continue;
    const module = name.slice('code/'.length, -'.py'.length).replace(/\//g, '.');
    const text = a.zip.data(e).toString('utf8');
    const classes = [...text.matchAll(/^class (\w+)\(Module\):\n((?:[ \t]+.*\n?|\n)*)/gm)];
    for (const m of classes) {
      const body = m[2]!;
      const list = (key: string): string[] => {
        const l = new RegExp(`^[ \\t]+${key} = \\[(.*)\\]`, 'm').exec(body);
        return l ? [...l[1]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]!) : [];
      };
      out.set(`${module}.${m[1]}`, { params: list('__parameters__'), buffers: list('__buffers__') });
    }
  }
  return out;
}

/**
 * The parameters and buffers of a TorchScript archive (torch.jit.save) by dotted name, as Python's
 * `torch.jit.load(path).state_dict()` lists them, read without running any of the archive's code: the archive is
 * checked as for jit.load, data.pkl is run as a data structure, and the names of each module class's parameters and
 * buffers are read from the `__parameters__` / `__buffers__` lines of its source. The tensors are the caller's (free
 * them); tensors sharing a storage share it here. For files one does not trust; load them into a model of this
 * library with loadWeights(path, model), which reads TorchScript archives this way.
 */
export function loadScriptWeights(path: string, options: TorchScriptReadOptions = {}): Map<string, Tensor> {
  return withArchive(path, options, 'jit.loadWeights', (a, bad, maxBytes) => {
    const tensors: TensorSpec[] = [];
    const root = unpickle(a.zip.data(a.record('data.pkl')!), bad, 'torchscript', tensors);
    if (!(root instanceof ScriptObject)) throw bad('data.pkl does not hold a module');
    const members = classMembers(a);
    const specs = new Map<string, TensorSpec>();
    const walk = (o: ScriptObject, prefix: string): void => {
      const state = o.state;
      if (!(state instanceof Map))
        throw bad(
          `the module class ${o.cls}${prefix ? ` (at '${prefix.slice(0, -1)}')` : ''} has its own __setstate__: its state is named only by that code, which jit.loadWeights does not run`,
        );
      const own = members.get(o.cls);
      if (own === undefined) {
        // no source for the class: every tensor attribute, in the order of its state
        for (const [k, v] of state) if (typeof k === 'string' && v instanceof TensorSpec) specs.set(prefix + k, v);
      } else {
        for (const k of [...own.params, ...own.buffers]) {
          const v = state.get(k);
          if (v instanceof TensorSpec) specs.set(prefix + k, v);
        }
      }
      for (const [k, v] of state)
        if (typeof k === 'string' && v instanceof ScriptObject && (own === undefined || members.has(v.cls)))
          walk(v, `${prefix}${k}.`);
    };
    walk(root, '');
    return materialize(a.zip, a.root, specs, bad, maxBytes);
  });
}
