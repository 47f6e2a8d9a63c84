"""``smartscreen eval --model models/NAME --data data.yaml``: accuracy, recall at an operating point,
clean-parcel false-alarm rate, PR curves; ``--baseline`` runs the promotion check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "evaluate a model package on a labelled dataset through the detection engine (mAP, recall, false alarms)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model package folder (models/NAME)")
    parser.add_argument("--data", type=Path, required=True, help="data.yaml of a YOLO dataset in the taxonomy")
    parser.add_argument("--split", default="", help="split to evaluate (default: test if present, else val)")
    point = parser.add_mutually_exclusive_group()
    point.add_argument(
        "--target-far",
        type=float,
        default=0.03,
        help="choose the operating threshold for this clean-parcel false-alarm rate (default 0.03)",
    )
    point.add_argument("--threshold", type=float, help="fixed operating score threshold instead")
    parser.add_argument("--out", type=Path, help="folder for eval.json and pr_curve.png (default runs/eval/NAME-SPLIT)")
    parser.add_argument("--baseline", type=Path, help="current model package: run the promotion check against it")
    parser.add_argument("--tolerance", type=float, default=0.02, help="allowed AP50 loss per prohibited class")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="paired-bootstrap resamples for the promotion check: a drop beyond the tolerance fails only when its "
        "95%% interval lies below 0 (default 1000; 0: every drop beyond the tolerance fails)",
    )
    parser.add_argument(
        "--tta",
        choices=("package", "none", "h", "hv", "d4"),
        default="package",
        help="test-time augmentation: as model.yaml says (default, what the line runs), or override it for both "
        "packages (none: one view; h: plus the left-right mirror; hv: four mirrored views; d4: eight, with transposes)",
    )
    parser.add_argument(
        "--verifier",
        choices=("package", "off"),
        default="package",
        help="second-look verifier: as the package has it (default, what the line runs) or off for both packages",
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="only the first N images (a quick check)")
    parser.add_argument("--record", action="store_true", help="write the metrics into the package's model.yaml")


def run(args: argparse.Namespace) -> int:
    from smartscreen.training.evaluate import (
        EvalSettings,
        ap50_delta_intervals,
        compare_reports,
        plot_pr_curves,
        predict,
        record_metrics,
        report_for,
    )

    if args.bootstrap < 0:
        raise SystemExit("--bootstrap must be >= 0")
    if args.record and (args.tta != "package" or args.verifier != "package"):
        raise SystemExit(
            "--record writes the package's metrics: evaluate it as the line runs it (no --tta or --verifier override)"
        )

    def progress(done: int, total: int) -> None:
        if done == total or done % 200 < args.batch:
            print(f"  {done}/{total} images", file=sys.stderr, flush=True)

    def settings(model: Path) -> EvalSettings:
        return EvalSettings(
            model=model,
            data=args.data,
            split=args.split,
            target_far=None if args.threshold is not None else args.target_far,
            threshold=args.threshold,
            batch=args.batch,
            threads=args.threads,
            limit=args.limit,
            tta=None if args.tta == "package" else args.tta,
            verifier=args.verifier == "package",
        )

    predictions = predict(settings(args.model), progress)
    report, metrics = report_for(settings(args.model), predictions)
    out = args.out or Path("runs/eval") / f"{args.model.name}-{report.split}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(report.to_json(), encoding="utf-8")
    plot = plot_pr_curves(
        metrics, f"{report.model_id} on {args.data.parent.name} [{report.split}]", out / "pr_curve.png"
    )
    print(report.summary())
    print(f"wrote {out / 'eval.json'}" + (f" and {plot}" if plot else ""))
    if args.record:
        record_metrics(args.model, report, f"{args.data} [{report.split}]")
        print(f"recorded the metrics in {args.model / 'model.yaml'}")
    if args.baseline is not None:
        base_predictions = predict(settings(args.baseline), progress)
        base_report, _ = report_for(settings(args.baseline), base_predictions)
        (out / "baseline-eval.json").write_text(base_report.to_json(), encoding="utf-8")
        intervals = (
            ap50_delta_intervals(predictions, base_predictions, resamples=args.bootstrap) if args.bootstrap else ()
        )
        comparison = compare_reports(report, base_report, args.tolerance, intervals)
        (out / "promotion.json").write_text(comparison.to_json(), encoding="utf-8")
        print(comparison.summary())
        return 0 if comparison.passed else 1
    return 0
