"""configs/paper (one file per table cell), the grid runner and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from avssl.cli import instantiate, main
from avssl.paper import CELLS, PAPER, write_configs
from avssl.report import collect, figure3_matrix, write_report
from tests.conftest import TINY_DATA_ARGS

SMALL = ["--model.init_args.width=4", "--model.init_args.layers=[1, 1, 1, 1]"]
ALL_CELLS = [(table, cell) for table, cells in CELLS.items() for cell in cells]


def test_cell_files_are_in_sync_with_avssl_paper(tmp_path):
    written = {p.relative_to(tmp_path) for p in write_configs(tmp_path)}
    shipped = {p.relative_to("configs/paper") for p in Path("configs/paper").rglob("*.yaml")}
    assert written == shipped and len(written) == 87
    for rel in written:
        assert (tmp_path / rel).read_text() == (Path("configs/paper") / rel).read_text(), rel


def test_cell_counts_match_the_paper():
    sizes = {table: len(cells) for table, cells in CELLS.items()}
    # T1 2 audio augs x 2 places; T2 4 x 3 alphas + control; F3 12 ordered pairs + 4 singles + control;
    # T3 2 x 4 locations + control; T4 (4 frames + 4 hops + 4 rates) x with/without RE; T5 5 x 4 epochs
    assert sizes == {"table1": 4, "table2": 13, "figure3": 17, "table3": 9, "table4": 24, "table5": 20}
    assert all(cell in CELLS[table] for table, cells in PAPER.items() for cell in cells)


@pytest.mark.parametrize("table, cell", ALL_CELLS, ids=[f"{t}/{c}" for t, c in ALL_CELLS])
def test_every_cell_instantiates_its_model_and_data(table, cell, tiny_root):
    args = [
        "--config=configs/simclr.yaml",
        f"--config=configs/paper/{table}/{cell}.yaml",
        *TINY_DATA_ARGS,
        f"--data.synthetic_root={tiny_root}",
        *SMALL,
    ]
    model, data, _ = instantiate(args)
    override = yaml.safe_load(Path(f"configs/paper/{table}/{cell}.yaml").read_text())
    temporal = override.get("data", {}).get("augment", {}).get("temporal")
    if temporal is not None:
        assert [(t.name, t.alpha, t.streams) for t in data.transform.cfg.temporal] == [
            (t["name"], t["alpha"], t["streams"]) for t in temporal
        ]
    if "num_frames" in override.get("data", {}):
        assert data.clip_kwargs["num_frames"] == override["data"]["num_frames"]
    if "model" in override:
        assert override["model"]["class_path"].endswith(type(model).__name__)


def tiny_extra(tmp_path, tiny_root):
    extra = tmp_path / "tiny.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "trainer": {"limit_val_batches": 1, "log_every_n_steps": 1},
                "model": {"init_args": {"width": 4, "layers": [1, 1, 1, 1], "proj_hidden_dim": 16, "proj_dim": 8}},
                "data": {
                    "synthetic": {"num_classes": 4, "videos_per_class": 6, "duration": 3.0, "size": 48, "seed": 1},
                    "synthetic_root": str(tiny_root),
                    "num_workers": 0,
                    "batch_size": 4,
                    "short_side": 40,
                    "sample_rate": 16000,
                    "augment": {"crop_size": 32},
                },
            }
        )
    )
    linear = tmp_path / "tiny_linear.yaml"
    linear.write_text(
        yaml.safe_dump(
            {
                "model": {"init_args": {"width": 4, "layers": [1, 1, 1, 1], "epochs": 2, "train_clips": 1}},
                "data": {
                    "eval_clips": 1,
                    "eval_crops": 1,
                    "short_side": 40,
                    "num_workers": 0,
                    "batch_size": 4,
                    "augment": {"crop_size": 32, "eval_crop_size": 32},
                },
            }
        )
    )
    return extra, linear


def test_grid_dry_run_prints_every_command(capsys):
    main(["grid", "configs/paper/table2", "--dry-run", "--epochs", "100", "--data-root", "/data/AVE", "--devices", "4"])
    out = capsys.readouterr().out
    fits = [line for line in out.splitlines() if line.startswith("avssl fit")]
    tests = [line for line in out.splitlines() if line.startswith("avssl test")]
    assert len(fits) == len(tests) == 13
    assert all("--trainer.max_epochs=100" in f and "--data.root=/data/AVE" in f and "--trainer.devices=4" in f for f in fits)
    assert "configs/paper/table2/re_a075.yaml" in out and "runs/grid/table2/re_a075/checkpoints/last.ckpt" in out


def test_grid_runs_cells_resumably_and_report_shows_them(tmp_path, tiny_root, capsys):
    extra, linear = tiny_extra(tmp_path, tiny_root)
    out = tmp_path / "grid"
    cells = ["configs/paper/table2/control.yaml", "configs/paper/table2/re_a075.yaml"]
    args = [
        "grid",
        *cells,
        "--out",
        str(out),
        "--extra",
        str(extra),
        "--linear",
        "configs/linear.yaml",
        "--linear",
        str(linear),
        "--epochs",
        "1",
    ]
    main(args)
    assert (out / "table2" / "re_a075" / "results.json").exists() and (out / "table2" / "control" / "results.json").exists()
    main(args)
    assert capsys.readouterr().out.count("done, skipped") == 2
    shared = yaml.safe_load((out / "table2" / "re_a075" / "shared_data.yaml").read_text())["data"]
    assert shared["sample_rate"] == 16000 and "augment" not in shared
    main(["report", str(out)])
    report = (out / "report" / "report.md").read_text()
    assert "(65.42)" in report and "(58.70)" in report
    values, modes = collect(out)
    assert set(values["table2"]) == {"control", "re_a075"} and set(modes.values()) == {"cached"}
    assert (out / "report" / "figure3.png").stat().st_size > 0 and (out / "report" / "table4.png").stat().st_size > 0


def test_report_never_fills_missing_cells(tmp_path):
    def result(table, cell, top1):
        path = tmp_path / table / cell / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"metrics": {"pretrained/cached/fused": {"top1": top1}, "pretrained/full/fused": {"top1": top1 + 1}}}))

    result("table2", "re_a075", 61.0)
    for first in ("re", "fd", "tm"):
        result("figure3", first, 50.0)
    result("figure3", "re_fd", 54.0)
    write_report(tmp_path)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "62.00 (65.42)" in report  # the full mode is preferred over cached
    assert "— (49.75)" in report  # FD alpha 0.25: not run, paper number shown, nothing invented
    matrix = figure3_matrix(collect(tmp_path)[0])
    assert matrix[0][0] == 51.0 and matrix[0][1] == 55.0 and matrix[0][4] is None  # RE row incomplete: no mean
    assert matrix[4][4] is None  # control not run
