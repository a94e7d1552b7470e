"""COCO bbox evaluation: our evaluate_coco against pycocotools' COCOeval on a synthetic set.

    python bench/coco_eval.py            # 5,000 images, 100,000 detections, 3 repeats
    python bench/coco_eval.py --quick    # 1,000 images, 20,000 detections, once, nothing written

Ground truth: 5,000 images of 640 × 480 with 1–13 objects each (80 categories, skewed towards
the first ones as in COCO; sides log-uniform in [4, 400] px so all three area ranges are
populated; 1 % crowd regions). Detections: 80 % of the objects found once (box jittered by
~10 % of its size), 10 % found twice, 5 % with the wrong class, then random false positives up
to the total; scores uniform, rounded to 3 decimals so that ties happen. Both sides read the
same two JSON files from disk and the time covers everything: pycocotools ``COCO(gt)`` +
``loadRes`` + ``evaluate`` + ``accumulate`` + ``summarize`` (its prints silenced) against our
``load_coco`` + ``load_detections`` + ``evaluate_coco`` + ``summary``; "evaluate_coco only" is
the last two on already loaded inputs. Median milliseconds over ``--repeats``; the 12 stats and
the precision / recall / scores arrays are compared.
"""

from __future__ import annotations

from typing import Any

from cli import parse_bench_args
from timing import median_ms


def synthetic(num_images: int, num_dets: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """A COCO ground truth dict and a detections list (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    num_k = 80
    cat_p = 1.0 / np.arange(1, num_k + 1)
    cat_p /= cat_p.sum()
    images = [{"id": i + 1, "width": 640, "height": 480, "file_name": f"{i + 1:012d}.jpg"}
              for i in range(num_images)]
    anns = []
    for img in range(1, num_images + 1):
        n = int(rng.integers(1, 14))
        side = np.exp(rng.uniform(np.log(4), np.log(400), (n, 2)))
        xy = rng.uniform(0, 1, (n, 2)) * (np.array([640, 480]) - side).clip(1)
        cats = rng.choice(num_k, n, p=cat_p) + 1
        for (x, y), (w, h), c in zip(xy, side, cats, strict=True):
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": int(c),
                         "bbox": [round(float(x), 2), round(float(y), 2),
                                  round(float(w), 2), round(float(h), 2)],
                         "area": round(float(w * h), 2), "iscrowd": int(rng.random() < 0.01)})
    dets = []
    for a in anns:
        x, y, w, h = a["bbox"]
        for _ in range(int(rng.random() < 0.8) + int(rng.random() < 0.1)):
            j = rng.normal(0, 0.1, 4)
            cat = a["category_id"] if rng.random() > 0.05 else int(rng.integers(1, num_k + 1))
            dets.append({"image_id": a["image_id"], "category_id": cat,
                         "bbox": [x + j[0] * w, y + j[1] * h, w * np.exp(j[2]), h * np.exp(j[3])],
                         "score": 0.0})
    while len(dets) < num_dets:
        w, h = np.exp(rng.uniform(np.log(4), np.log(400), 2))
        dets.append({"image_id": int(rng.integers(1, num_images + 1)),
                     "category_id": int(rng.choice(num_k, p=cat_p) + 1),
                     "bbox": [float(rng.uniform(0, 640 - min(w, 600))),
                              float(rng.uniform(0, 480 - min(h, 440))), float(w), float(h)],
                     "score": 0.0})
    dets = dets[:num_dets]
    for d, s in zip(dets, rng.random(len(dets)).round(3), strict=True):
        d["score"] = float(s)
        d["bbox"] = [round(float(v), 2) for v in d["bbox"]]
    cats = [{"id": k + 1, "name": f"class{k + 1}", "supercategory": "thing"}
            for k in range(num_k)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def measure(num_images: int, num_dets: int, repeats: int) -> dict[str, Any]:
    import contextlib
    import io
    import json
    import tempfile
    from pathlib import Path

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from foveal.detection.coco import load_coco, load_detections
    from foveal.detection.coco_eval import evaluate_coco

    gt, dets = synthetic(num_images, num_dets)
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, dt_path = Path(tmp) / "gt.json", Path(tmp) / "dt.json"
        gt_path.write_text(json.dumps(gt))
        dt_path.write_text(json.dumps(dets))

        def reference() -> COCOeval:
            with contextlib.redirect_stdout(io.StringIO()):
                coco_gt = COCO(str(gt_path))
                evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(dt_path)), "bbox")
                evaluator.evaluate()
                evaluator.accumulate()
                evaluator.summarize()
            return evaluator

        def ours() -> Any:
            g = load_coco(gt_path)
            result = evaluate_coco(g, load_detections(dt_path, g, "bbox"), "bbox")
            result.summary()
            return result

        t_ref, ref = median_ms(reference, repeats)
        t_ours, res = median_ms(ours, repeats)
        g = load_coco(gt_path)
        d = load_detections(dt_path, g, "bbox")
        t_eval, _ = median_ms(lambda: evaluate_coco(g, d, "bbox").summary(), repeats)
    stats_diff = float(np.abs(ref.stats - res.stats).max())
    arrays_diff = max(float(np.abs(ref.eval[k] - getattr(res, k)).max())
                      for k in ("precision", "recall", "scores"))
    return {"case": f"{num_images} images, {len(dets)} dets, {len(gt['annotations'])} objects",
            "pycocotools_ms": round(t_ref, 1), "ours_ms": round(t_ours, 1),
            "ours_evaluate_only_ms": round(t_eval, 1),
            "speedup": round(t_ref / t_ours, 2), "max_stats_diff": stats_diff,
            "max_array_diff": arrays_diff, "AP": round(float(res.stats[0]), 4)}


def main() -> None:
    args = parse_bench_args(__doc__, repeats=3)
    from common import save

    cases = [(1000, 20_000)] if args.quick else [(5000, 100_000)]
    repeats = 1 if args.quick else args.repeats
    print("| case | pycocotools ms | ours ms | speedup | ours evaluate_coco only ms | "
          "max stats diff | max array diff | AP |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for n, d in cases:
        r = measure(n, d, repeats)
        rows.append(r)
        print(f"| {r['case']} | {r['pycocotools_ms']} | {r['ours_ms']} | {r['speedup']} | "
              f"{r['ours_evaluate_only_ms']} | {r['max_stats_diff']:.1e} | "
              f"{r['max_array_diff']:.1e} | {r['AP']} |", flush=True)
    if not args.quick:
        summary = {"benchmark": "coco_eval", "threads": args.threads, "repeats": repeats,
                   "rows": rows}
        print(f"written to {save('coco_eval', summary)}")


if __name__ == "__main__":
    main()
