/**
 * TensorBoard's event files: TFRecord framing around Event protocol buffers (tensorboard/compat/proto/event.proto,
 * summary.proto, tensor.proto; the hparams plugin's plugin_data.proto and api.proto). Each record is
 *
 *   uint64 length (little-endian) | uint32 masked CRC-32C of the length's 8 bytes | data | uint32 masked CRC-32C of data
 *
 * and a file begins with an Event holding only `file_version: "brain.Event:2"`. The field numbers below are the
 * .proto files'; the summaries are the ones torch.utils.tensorboard writes for the same calls.
 */
import { maskedCrc32c } from './crc32c.js';
import { ProtoWriter } from './protobuf.js';

/** One TFRecord: the framed bytes of `data`. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** Event { wall_time = 1; step = 2; file_version = 3 | summary = 5 }. */
export function eventBytes(e: {
  wallTime: number;
  step?: number;
  fileVersion?: string;
  summary?: ProtoWriter;
}): Uint8Array {
  const w = new ProtoWriter().double(1, e.wallTime).int(2, e.step ?? 0);
  if (e.fileVersion !== undefined) w.string(3, e.fileVersion);
  if (e.summary !== undefined) w.message(5, e.summary);
  return w.finish();
}

/** SummaryMetadata { plugin_data = 1 { plugin_name = 1; content = 2 } }. */
function pluginMetadata(name: string, content: Uint8Array = new Uint8Array(0)): ProtoWriter {
  return new ProtoWriter().message(1, new ProtoWriter().string(1, name).bytes(2, content));
}

/** Summary { value = 1 } with one Value { tag = 1; simple_value = 2 }: a scalar (PyTorch's add_scalar). */
export function scalarSummary(tag: string, value: number): ProtoWriter {
  return new ProtoWriter().message(1, new ProtoWriter().string(1, tag).float(2, value, true));
}

export interface Histogram {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  /** Right edge of each bucket. */
  bucketLimit: number[];
  /** Count of each bucket. */
  bucket: number[];
}

/**
 * The histogram of finite `values` in `bins` equal-width buckets between their min and max (numpy.histogram's,
 * as PyTorch's make_histogram computes it, the last bucket closed), with empty buckets at both ends trimmed as
 * PyTorch does. Null when there is no finite value.
 */
export function histogramOf(values: ArrayLike<number>, bins: number): Histogram | null {
  let min = Infinity,
    max = -Infinity,
    num = 0,
    sum = 0,
    sumSquares = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    num++;
    sum += v;
    sumSquares += v * v;
  }
  if (num === 0) return null;
  let lo = min,
    hi = max;
  if (lo === hi) {
    // numpy widens an empty range to [x - 0.5, x + 0.5]
    lo -= 0.5;
    hi += 0.5;
  }
  const width = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    let k = Math.floor((v - lo) / width);
    if (k >= bins) k = bins - 1;
    if (k < 0) k = 0;
    counts[k]!++;
  }
  const limits = Array.from({ length: bins }, (_, k) => (k === bins - 1 ? hi : lo + (k + 1) * width));
  let start = 0,
    end = bins;
  while (start < end && counts[start] === 0) start++;
  while (end > start && counts[end - 1] === 0) end--;
  return { min, max, num, sum, sumSquares, bucketLimit: limits.slice(start, end), bucket: counts.slice(start, end) };
}

/** Summary { value { tag; histo = 5 HistogramProto { min 1, max 2, num 3, sum 4, sum_squares 5, bucket_limit 6, bucket 7 } } }. */
export function histogramSummary(tag: string, h: Histogram): ProtoWriter {
  const histo = new ProtoWriter()
    .double(1, h.min)
    .double(2, h.max)
    .double(3, h.num)
    .double(4, h.sum)
    .double(5, h.sumSquares)
    .packedDoubles(6, h.bucketLimit)
    .packedDoubles(7, h.bucket);
  return new ProtoWriter().message(1, new ProtoWriter().string(1, tag).message(5, histo));
}

/**
 * Text, as PyTorch's add_text: Value { tag: `${tag}/text_summary`, metadata: plugin 'text', tensor = 8
 * TensorProto { dtype = 1: DT_STRING (7), tensor_shape = 2 { dim = 2 { size = 1: 1 } }, string_val = 8 } }.
 */
export function textSummary(tag: string, text: string): ProtoWriter {
  const tensor = new ProtoWriter()
    .int(1, 7)
    .message(2, new ProtoWriter().message(2, new ProtoWriter().int(1, 1)))
    .string(8, text, true);
  return new ProtoWriter().message(
    1,
    new ProtoWriter().string(1, `${tag}/text_summary`).message(9, pluginMetadata('text')).message(8, tensor),
  );
}

/** An hparams value: google.protobuf.Value { number_value = 2 | string_value = 3 | bool_value = 4 }. */
export type HparamValue = number | string | boolean;

function protoValue(v: HparamValue): ProtoWriter {
  const w = new ProtoWriter();
  if (typeof v === 'number') return w.double(2, v, true);
  if (typeof v === 'boolean') return w.int(4, v, true);
  return w.string(3, v, true);
}

function hparamsSummary(tag: string, data: ProtoWriter): ProtoWriter {
  // HParamsPluginData { version = 1 (0); experiment = 2 | session_start_info = 3 | session_end_info = 4 }
  const meta = pluginMetadata('hparams', data.finish());
  return new ProtoWriter().message(1, new ProtoWriter().string(1, tag).message(9, meta));
}

/**
 * The three summaries of PyTorch's hparams(): the experiment (HParamInfo { name 1, type 4 }: DATA_TYPE_STRING 1,
 * BOOL 2, FLOAT64 3; MetricInfo { name 1 MetricName { tag 2 } }), the session start (hparams map<string, Value> = 1,
 * group_name = 4, start_time_secs = 5) and the session end (status = 1: STATUS_SUCCESS 1, end_time_secs = 2).
 */
export function hparamsSummaries(
  hparams: Record<string, HparamValue>,
  metrics: string[],
  startTime: number,
): [ProtoWriter, ProtoWriter, ProtoWriter] {
  const experiment = new ProtoWriter();
  const start = new ProtoWriter();
  for (const [name, v] of Object.entries(hparams)) {
    experiment.message(
      4,
      new ProtoWriter().string(1, name).int(4, typeof v === 'number' ? 3 : typeof v === 'boolean' ? 2 : 1),
    );
    start.message(1, new ProtoWriter().string(1, name).message(2, protoValue(v)));
  }
  for (const m of metrics) experiment.message(5, new ProtoWriter().message(1, new ProtoWriter().string(2, m)));
  start.double(5, startTime);
  return [
    hparamsSummary('_hparams_/experiment', new ProtoWriter().message(2, experiment)),
    hparamsSummary('_hparams_/session_start_info', new ProtoWriter().message(3, start)),
    hparamsSummary(
      '_hparams_/session_end_info',
      new ProtoWriter().message(4, new ProtoWriter().int(1, 1).double(2, startTime)),
    ),
  ];
}
