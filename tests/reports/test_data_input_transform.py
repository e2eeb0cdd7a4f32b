"""reports.data: a run's input transform (recorded beside its config) gets a column of its own in
the loaded frame and the runs table, and stays out of the variant labels."""
from __future__ import annotations

from pathlib import Path

from stored_configs import resolved

from measure.results import Result, ResultsStore
from reports import data as D

HIGHPASS = {"name": "highpass", "params": {"kernel": 11, "sigma": 5.0}}


def config(fill: str, seed: int, transform: dict | None) -> dict:
    method_cfg, aug_cfg = resolved("simclr", "sal-mask", aug_cfg={"fill": fill})
    out = {"method": "simclr", "aug": "sal-mask", "train": {"seed": seed}, "method_cfg": method_cfg, "aug_cfg": aug_cfg}
    return out if transform is None else {**out, "input_transform": transform}


def test_the_input_transform_has_its_own_column(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "r.sqlite")
    runs = {"simclr-sal-mask-resnet18-shapes64-s0-0000000a": ("highpass", HIGHPASS),
            "simclr-sal-mask-resnet18-shapes64-s0-0000000b": ("blur", None),
            "simclr-sal-mask-resnet18-shapes64-s1-0000000c": ("highpass", None)}    # recorded before transforms were
    for i, (rid, (fill, transform)) in enumerate(runs.items()):
        sha = str(i) * 64
        store.add([Result(rid, sha, "linear", "shapes64", "test", "top1", 50.0 + i, None, {"c": 1})])
        store.put_run(rid, sha, config(fill, i, transform))
    table = D.runs_table(D.load(store.path)).set_index("run_id")
    assert table["input_transform"].to_dict() == {
        "simclr-sal-mask-resnet18-shapes64-s0-0000000a": "highpass(kernel=11, sigma=5)",
        "simclr-sal-mask-resnet18-shapes64-s0-0000000b": "",
        "simclr-sal-mask-resnet18-shapes64-s1-0000000c": ""}
    assert table["variant"].to_dict() == {                                  # the transform is no variant
        "simclr-sal-mask-resnet18-shapes64-s0-0000000a": "fill=highpass",
        "simclr-sal-mask-resnet18-shapes64-s0-0000000b": "fill=blur",
        "simclr-sal-mask-resnet18-shapes64-s1-0000000c": "fill=highpass"}
    assert D.input_transform_label(None) == "" and D.input_transform_label({"input_transform": None}) == ""
