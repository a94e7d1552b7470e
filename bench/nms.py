"""Greedy NMS: our nms against cv2.dnn.NMSBoxes on the same random boxes.

    python bench/nms.py            # 10k and 100k boxes, 5 repeats
    python bench/nms.py --quick    # 10k boxes only, 3 repeats, nothing written

Boxes: top-left corners uniform in a 1000 × 1000 image, sides uniform in [10, 200] px, scores
uniform in [0, 1) (a dense, detector-like pile-up), float32 for us, the same values as xywh
Python floats for OpenCV (its Rect2d, no "+1"). IoU thresholds 0.5 and 0.7. Median milliseconds
over ``--repeats``; OpenCV's time includes nothing but the call (lists are built beforehand).
Both keep lists are checked to be identical. Ratio = ours / OpenCV.
"""

from __future__ import annotations

from typing import Any

from cli import parse_bench_args
from timing import median_ms

CASES = [(10_000, 0.5), (10_000, 0.7), (100_000, 0.5), (100_000, 0.7)]




def measure(n: int, iou: float, repeats: int) -> dict[str, Any]:
    import cv2
    import numpy as np
    import torch

    from foveal.detection.nms import nms

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(n, 2, generator=g) * 1000
    wh = torch.rand(n, 2, generator=g) * 190 + 10
    boxes, scores = torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)
    xywh = torch.cat([xy, wh], 1).double().tolist()
    score_list = scores.double().tolist()
    t_ours, keep = median_ms(lambda: nms(boxes, scores, iou), repeats)
    t_cv, ref = median_ms(lambda: cv2.dnn.NMSBoxes(xywh, score_list, 0.0, iou), repeats)
    same = keep.tolist() == np.asarray(ref).ravel().tolist()
    return {"case": f"N={n} IoU>{iou}", "kept": len(keep), "ours_ms": round(t_ours, 1),
            "opencv_ms": round(t_cv, 1), "ratio": round(t_ours / t_cv, 2), "identical": same}


def main() -> None:
    args = parse_bench_args(__doc__, repeats=5)
    import cv2
    import torch

    from common import save

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    cases = CASES[:2] if args.quick else CASES
    repeats = 3 if args.quick else args.repeats
    print("| case | kept | ours ms | OpenCV ms | ratio | identical keep |")
    print("|---|---|---|---|---|---|")
    rows = []
    for n, iou in cases:
        r = measure(n, iou, repeats)
        rows.append(r)
        print(f"| {r['case']} | {r['kept']} | {r['ours_ms']} | {r['opencv_ms']} | {r['ratio']} | "
              f"{r['identical']} |", flush=True)
    if not args.quick:
        summary = {"benchmark": "nms", "threads": args.threads, "repeats": repeats, "rows": rows}
        print(f"written to {save('nms', summary)}")


if __name__ == "__main__":
    main()
