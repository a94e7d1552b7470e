"""`foveal coco-eval`: COCO-style evaluation of a detections file against ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_coco_eval(args: argparse.Namespace) -> int:
    """Load both files, evaluate, print the 12-line summary; optionally write JSON and a report."""
    from foveal.atomic import atomic_write_json
    from foveal.detection.coco import load_coco, load_detections
    from foveal.detection.coco_eval import evaluate_coco

    gt = load_coco(args.gt)
    detections = load_detections(args.detections, gt, args.iou_type)
    evaluation = evaluate_coco(gt, detections, args.iou_type,
                               use_categories=not args.class_agnostic)
    print(evaluation.summary())
    if args.json is not None:
        atomic_write_json(args.json, evaluation.to_dict())
        print(f"metrics   {args.json}")
    if args.out is not None:
        from foveal.report.coco_eval import write_coco_eval_report

        report = write_coco_eval_report(
            args.out, evaluation, config={"ground_truth": str(args.gt),
                                          "detections": str(args.detections),
                                          "iou_type": args.iou_type,
                                          "class_agnostic": args.class_agnostic})
        print(f"report    {report}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-command(s) to the ``foveal`` parser."""
    p = sub.add_parser("coco-eval", help="COCO AP/AR of a detections file",
                       description="Evaluate COCO-format results (a JSON list of detections) "
                       "against COCO ground truth; prints the 12 standard AP/AR numbers, the "
                       "same as pycocotools' COCOeval.")
    p.add_argument("gt", type=Path, metavar="GT.json", help="ground truth (instances_*.json)")
    p.add_argument("detections", type=Path, metavar="DETECTIONS.json",
                   help="results: [{image_id, category_id, score, bbox | segmentation}, ...]")
    p.add_argument("--iou-type", choices=["bbox", "segm"], default="bbox",
                   help="box or mask IoU (default: bbox)")
    p.add_argument("--class-agnostic", action="store_true",
                   help="pool all categories (COCOeval useCats=0)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="also write the stats, per-class AP and parameters as JSON")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="write metrics.json, PR-curve plots and report.html into DIR")
    p.set_defaults(func=cmd_coco_eval)
