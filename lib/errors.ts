/**
 * Error classes and the one argument-checking helper every public function uses, so messages read the same:
 * "Expected a positive number for lr but received -1 of type number".
 */

export type TorchErrorCode =
  | 'TORCH_ERROR'
  | 'SHAPE_MISMATCH'
  | 'DTYPE_MISMATCH'
  | 'DEVICE_MISMATCH'
  | 'DEVICE_UNAVAILABLE'
  | 'INDEX_OUT_OF_RANGE'
  | 'NOT_POSITIVE_DEFINITE'
  | 'SINGULAR'
  | 'AUTOGRAD'
  | 'DISTRIBUTED'
  | 'OUT_OF_MEMORY'
  | 'DISPOSED'
  | 'NON_FINITE'
  | 'NO_STATISTICS'
  | 'BAD_FILE';

/**
 * libtorch's messages name Python's keyword arguments; this library's options are camelCase object properties.
 * Each pattern is a whole phrase of a libtorch message (1.13 and 2.x), rewritten to what a JavaScript caller passes.
 */
const PYTHON_OPTIONS: [RegExp, string][] = [
  [/Specify retain_graph=True/g, 'Pass { retainGraph: true } to backward() or autograd.grad()'],
  [/Set allow_unused=True/g, 'Pass { allowUnused: true } to autograd.grad()'],
  [/\bretain_graph=True\b/g, '{ retainGraph: true }'],
  [/\bcreate_graph=True\b/g, '{ createGraph: true }'],
  [/\ballow_unused=True\b/g, '{ allowUnused: true }'],
  [/\.retain_grad\(\)/g, '.retainGrad()'],
  [/\btorch\.no_grad\(\)/g, 'noGrad()'],
];

/** A libtorch message with Python's option names replaced by this library's (`retain_graph=True` -> `{ retainGraph: true }`). */
export function jsOptionNames(message: string): string {
  if (!message.includes('_')) return message;
  for (const [re, js] of PYTHON_OPTIONS) message = message.replace(re, js);
  return message;
}

/** An error raised by libtorch (or the addon), carrying libtorch's message and a machine-readable code. */
export class TorchError extends Error {
  /** What went wrong, machine-readable ('SHAPE_MISMATCH', 'DTYPE_MISMATCH', 'AUTOGRAD', ...). */
  readonly code: TorchErrorCode;
  constructor(message: string, code: TorchErrorCode | string = 'TORCH_ERROR') {
    super(jsOptionNames(String(message)));
    this.name = 'TorchError';
    this.code = code as TorchErrorCode;
  }
}

/**
 * Why a tensor was freed. A disposed Tensor keeps the reason as its (negative) handle, -2 - reason, at no cost;
 * the addon turns it into the DISPOSED error's message (FREED_MESSAGES, handed over at load by native.ts).
 */
export const FREED = {
  /** dispose(), torch.dispose(), `using` */
  dispose: 0,
  /** the end of the tidy() scope that made it */
  tidy: 1,
  /** a DataLoader advancing to its next batch (or the loop ending) */
  dataLoader: 2,
  /** an optimizer's state replaced (loadStateDict) or freed (dispose) */
  optimizerState: 3,
  /** a .grad wrapper: the gradient replaced, or its tensor disposed */
  grad: 4,
  /** a gradient hook returning */
  hook: 5,
  /** its Module disposed, or the tensor replaced by Module.to() */
  module: 6,
  /** handed over to a Parameter (new Parameter(t), registerParameter(name, t)) */
  handedOver: 7,
} as const;
export type FreedReason = (typeof FREED)[keyof typeof FREED];

const GONE = 'it cannot be used any more';
/** The DISPOSED message for each FREED reason, in order. */
export const FREED_MESSAGES: readonly string[] = [
  `tensor was disposed: ${GONE}`,
  `tensor was disposed at the end of the tidy() scope that created it: ${GONE}. Return it from the tidy() callback ` +
    `(it then belongs to the enclosing scope) or call keep() on it (t.keep(), torch.keep(t)) to use it after the scope`,
  `tensor was a DataLoader batch, disposed when the loop advanced to the next batch (or ended): ${GONE}. ` +
    `The loader owns its batches: call keep() on a batch tensor (it is then yours to dispose) or clone() it to use it later`,
  `tensor was optimizer state, disposed when the optimizer's state was replaced (loadStateDict) or freed (dispose): ${GONE}. ` +
    `clone() state read from stateDict() that must outlive it`,
  `tensor was a .grad, disposed when its tensor's gradient was replaced (or its tensor disposed): ${GONE}. ` +
    `clone() a gradient to keep it, or read .grad again`,
  `tensor was disposed when the gradient hook that received or created it returned: ${GONE}. ` +
    `clone() and keep() what must outlive the hook`,
  `tensor was owned by a Module and disposed with it (Module.dispose()) or replaced by Module.to(): ${GONE}. ` +
    `Read the module's parameters and buffers again, or clone() what must outlive the module`,
  `tensor was handed over to a Parameter (new Parameter(t), registerParameter(name, t)), which took its storage: ${GONE}. ` +
    `Use the Parameter, or pass t.clone() to keep t`,
];

/** The DISPOSED message for a disposed tensor's handle (-2 - reason). */
export function disposedMessage(handle: number): string {
  return FREED_MESSAGES[-2 - handle] ?? FREED_MESSAGES[0]!;
}

function describe(value: unknown): string {
  let shown: string;
  try {
    shown =
      typeof value === 'string' || Array.isArray(value)
        ? JSON.stringify(value)
        : typeof value === 'bigint'
          ? `${value}n`
          : String(value);
  } catch {
    shown = Object.prototype.toString.call(value);
  }
  if (shown.length > 60) shown = shown.slice(0, 57) + '...';
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `${shown} of type ${type}`;
}

/** Builds the message shared by every argument check. */
export function invalid(what: string, name: string, value: unknown): string {
  return `Expected ${what} for ${name} but received ${describe(value)}`;
}

export function typeError(what: string, name: string, value: unknown): TypeError {
  return new TypeError(invalid(what, name, value));
}

export function rangeError(what: string, name: string, value: unknown): RangeError {
  return new RangeError(invalid(what, name, value));
}

/** Argument checks: each returns the value, typed, or throws TypeError / RangeError naming the argument. */
export const is = {
  number(value: unknown, name: string): number {
    if (typeof value !== 'number' || Number.isNaN(value)) throw typeError('a number', name, value);
    return value;
  },
  finite(value: unknown, name: string): number {
    if (typeof value !== 'number') throw typeError('a finite number', name, value);
    if (!Number.isFinite(value)) throw rangeError('a finite number', name, value);
    return value;
  },
  positive(value: unknown, name: string): number {
    if (typeof value !== 'number') throw typeError('a positive number', name, value);
    if (!(value > 0) || !Number.isFinite(value)) throw rangeError('a positive number', name, value);
    return value;
  },
  nonNegative(value: unknown, name: string): number {
    if (typeof value !== 'number') throw typeError('a non-negative number', name, value);
    if (!(value >= 0) || !Number.isFinite(value)) throw rangeError('a non-negative number', name, value);
    return value;
  },
  inRange(value: unknown, name: string, lo: number, hi: number, { loOpen = false, hiOpen = false } = {}): number {
    const what = `a number in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}`;
    if (typeof value !== 'number') throw typeError(what, name, value);
    const ok = (loOpen ? value > lo : value >= lo) && (hiOpen ? value < hi : value <= hi);
    if (!ok) throw rangeError(what, name, value);
    return value;
  },
  integer(value: unknown, name: string): number {
    if (typeof value !== 'number') throw typeError('an integer', name, value);
    if (!Number.isInteger(value)) throw rangeError('an integer', name, value);
    return value;
  },
  positiveInteger(value: unknown, name: string): number {
    if (typeof value !== 'number') throw typeError('a positive integer', name, value);
    if (!Number.isInteger(value) || value <= 0) throw rangeError('a positive integer', name, value);
    return value;
  },
  nonNegativeInteger(value: unknown, name: string): number {
    if (typeof value !== 'number') throw typeError('a non-negative integer', name, value);
    if (!Number.isInteger(value) || value < 0) throw rangeError('a non-negative integer', name, value);
    return value;
  },
  boolean(value: unknown, name: string): boolean {
    if (typeof value !== 'boolean') throw typeError('a boolean', name, value);
    return value;
  },
  string(value: unknown, name: string): string {
    if (typeof value !== 'string') throw typeError('a string', name, value);
    return value;
  },
  oneOf<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value))
      throw (typeof value === 'string' ? rangeError : typeError)(
        `one of ${choices.map((c) => `'${c}'`).join(', ')}`,
        name,
        value,
      );
    return value as T;
  },
  /**
   * An options argument: undefined gives `{}`; anything but a plain object (null, a number, a string, an array)
   * is a TypeError naming the argument, where destructuring would say "Cannot destructure 'null'".
   */
  options<T extends object>(value: T | undefined | null, name = 'options'): T {
    if (value === undefined) return {} as T;
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw typeError('an options object', name, value);
    return value;
  },
  function(value: unknown, name: string): (...args: never[]) => unknown {
    if (typeof value !== 'function') throw typeError('a function', name, value);
    return value as (...args: never[]) => unknown;
  },
  /** A shape: an array of non-negative integers. */
  shape(value: unknown, name: string): number[] {
    if (!Array.isArray(value)) throw typeError('an array of non-negative integers', name, value);
    for (const d of value)
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 0)
        throw rangeError('an array of non-negative integers', name, value);
    return value as number[];
  },
  intArray(value: unknown, name: string): number[] {
    if (!Array.isArray(value) || value.some((d) => typeof d !== 'number' || !Number.isInteger(d)))
      throw typeError('an array of integers', name, value);
    return value as number[];
  },
};
