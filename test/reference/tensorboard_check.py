"""TensorBoard's own view of event files written by tensornormal's SummaryWriter (test/tensorboard.test.ts).

usage: tensorboard_check.py load RUN_DIR          -> JSON: what TensorBoard's EventAccumulator reads from the run
       tensorboard_check.py pytorch OUT_DIR       -> writes the same calls with torch.utils.tensorboard.SummaryWriter

Needs the tensorboard package (and python3-torch for `pytorch`); the test sets PYTHONPATH to where it is installed.
"""
import json
import sys


def load(run):
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = ea.EventAccumulator(run, size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "histograms": {}, "text": {}, "hparams": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags["histograms"]:
        out["histograms"][tag] = [
            {"step": e.step, "min": e.histogram_value.min, "max": e.histogram_value.max,
             "num": e.histogram_value.num, "sum": e.histogram_value.sum,
             "bucket_limit": list(e.histogram_value.bucket_limit), "bucket": list(e.histogram_value.bucket)}
            for e in acc.Histograms(tag)]
    for tag in tags["tensors"]:
        meta = acc.SummaryMetadata(tag)
        name = meta.plugin_data.plugin_name
        if name == "text":
            out["text"][tag] = [[e.step, [s.decode() for s in e.tensor_proto.string_val]] for e in acc.Tensors(tag)]
    # hparams summaries carry only metadata: the plugin accumulator (what TensorBoard's HParams dashboard uses) keeps them
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea

    pacc = pea.EventAccumulator(run)
    pacc.Reload()
    try:
        hparams = pacc.PluginTagToContent("hparams")
    except KeyError:  # a run without hparams
        hparams = {}
    for content in hparams.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        kind = data.WhichOneof("data")
        if kind == "experiment":
            out["hparams"]["experiment"] = {
                "hparams": [[h.name, h.type] for h in data.experiment.hparam_infos],
                "metrics": [m.name.tag for m in data.experiment.metric_infos]}
        elif kind == "session_start_info":
            out["hparams"]["start"] = {
                k: (v.number_value if v.HasField("number_value") else v.string_value if v.HasField("string_value") else v.bool_value)
                for k, v in data.session_start_info.hparams.items()}
        elif kind == "session_end_info":
            out["hparams"]["end"] = data.session_end_info.status
    print(json.dumps(out))


def pytorch(out_dir):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(out_dir)
    w.add_scalar("loss/train", 0.125, 7, walltime=1234.5)
    w.add_scalar("loss/train", -3.75, 123456789, walltime=1234.75)
    w.close()


if __name__ == "__main__":
    {"load": load, "pytorch": pytorch}[sys.argv[1]](sys.argv[2])
