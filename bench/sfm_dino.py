"""Incremental structure from motion on Middlebury dinoSparseRing: foveal against pycolmap.

    python bench/sfm_dino.py             # both pipelines, writes bench/results/sfm_dino.json
    python bench/sfm_dino.py --quick     # the same, writes nothing

The 16 views (640 × 480, 22.5° apart on a ring, f ≈ 3310 px) of a low-texture plaster dinosaur
on black, with the intrinsics of ``dinoSR_par.txt`` held fixed in both pipelines:

- foveal: :func:`foveal.geometry.sfm.incremental_sfm` with its default options (SIFT at
  contrast threshold 0.005, RootSIFT, guided matching, 5-point RANSAC, PnP, Huber BA).
- pycolmap: ``extract_features`` (PINHOLE camera with the par file's fx, fy, cx, cy, one camera
  for all images), ``match_exhaustive`` and ``incremental_mapping`` with default options and
  the intrinsics fixed in bundle adjustment; the largest reconstruction is scored.

Per pipeline: views registered, points, observations, reprojection RMSE (pixels, recomputed
from the reconstruction's own cameras and points), and, against the par file's cameras after a
similarity alignment of the registered centres (Umeyama), the median rotation error (degrees)
and median centre error (as a fraction of the largest distance between two of the 16 reference
centres, the ring's diameter), and the wall time. Both run on ``--threads`` threads (CPU).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from cli import parse_bench_args

FX, FY, CX, CY = 3310.4, 3325.5, 316.73, 200.55  # dinoSR_par.txt, the same for every view


def score(names: list[str], R: Any, C: Any, reference: dict[str, Any]) -> dict[str, Any]:
    """Median rotation / centre errors against the par file's cameras after alignment."""
    import numpy as np

    from foveal.geometry.alignment import camera_pose_errors

    every = np.stack([c.center for c in reference.values()])
    diameter = float(np.max(np.linalg.norm(every[:, None] - every[None], axis=2)))
    if len(names) < 3:
        return {"median_rotation_deg": None, "median_center_fraction": None}
    e = camera_pose_errors(R, C, np.stack([reference[n].R for n in names]),
                           np.stack([reference[n].center for n in names]))
    return {"median_rotation_deg": round(e.median_rotation_deg, 4),
            "median_center_fraction": round(e.median_center / diameter, 5)}


def run_foveal(folder: Path, reference: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from foveal.geometry.image import read_image
    from foveal.geometry.sfm import incremental_sfm, list_images

    start = time.perf_counter()
    paths = list_images(folder)
    names = [p.name for p in paths]
    images = [read_image(p) for p in paths]
    K = np.stack([reference[n].K for n in names])
    result = incremental_sfm(images, K, names)
    seconds = time.perf_counter() - start
    reg = np.flatnonzero(result.registered)
    m = result.metrics()
    return {"pipeline": "foveal", "views": len(reg),
            "registered": [names[i] for i in reg], "points": m["points"],
            "observations": m["observations"], "rmse_px": round(m["reprojection_rmse_px"], 4),
            **score([names[i] for i in reg], result.R[reg], result.centers[reg], reference),
            "seconds": round(seconds, 2),
            "stages_s": {k: round(v, 2) for k, v in result.timings.items()}}


def run_pycolmap(folder: Path, reference: dict[str, Any], threads: int) -> dict[str, Any]:
    import numpy as np
    import pycolmap

    work = Path(tempfile.mkdtemp(prefix="sfm_dino_colmap_"))
    try:
        names = sorted(p.name for p in folder.glob("*.png"))
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "PINHOLE"
        reader.camera_params = f"{FX},{FY},{CX},{CY}"
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = threads
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = threads
        mapper = pycolmap.IncrementalPipelineOptions()
        mapper.num_threads = threads
        mapper.ba_refine_focal_length = False
        mapper.ba_refine_principal_point = False
        mapper.ba_refine_extra_params = False
        start = time.perf_counter()
        pycolmap.extract_features(work / "db.db", folder, image_names=names,
                                  camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                                  extraction_options=extraction, device=pycolmap.Device.cpu)
        pycolmap.match_exhaustive(work / "db.db", matching_options=matching,
                                  device=pycolmap.Device.cpu)
        models = pycolmap.incremental_mapping(work / "db.db", folder, work / "sparse",
                                              options=mapper)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not models:
        return {"pipeline": "pycolmap", "views": 0, "seconds": round(seconds, 2)}
    rec = max(models.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))
    images = sorted((im for im in rec.images.values() if im.has_pose), key=lambda im: im.name)
    R, C = [], []
    for im in images:
        pose = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
        R.append(pose.rotation.matrix())
        C.append(im.projection_center())
    errors = []
    for point in rec.points3D.values():
        for element in point.track.elements:
            im = rec.images[element.image_id]
            projected = im.project_point(point.xyz)
            if projected is not None:
                errors.append(np.linalg.norm(projected - im.points2D[element.point2D_idx].xy))
    e = np.asarray(errors)
    return {"pipeline": "pycolmap", "views": len(images),
            "registered": [im.name for im in images], "points": rec.num_points3D(),
            "observations": len(e), "rmse_px": round(float(np.sqrt(np.mean(e * e))), 4),
            **score([im.name for im in images], np.stack(R), np.stack(C), reference),
            "seconds": round(seconds, 2), "models": len(models)}


def main() -> None:
    args = parse_bench_args(__doc__, threads=1)
    import cv2
    import torch

    from common import SHARED_DATA, save
    from foveal.geometry.camera import read_middlebury_par

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    folder = SHARED_DATA / "middlebury_dinoSparseRing" / "dinoSparseRing"
    reference = read_middlebury_par(folder / "dinoSR_par.txt")
    rows = [run_foveal(folder, reference), run_pycolmap(folder, reference, args.threads)]
    print("| pipeline | views | points | observations | RMSE (px) | median rot. err. (°) "
          "| median centre err. (% of ring) | time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        fraction = r.get("median_center_fraction")
        print(f"| {r['pipeline']} | {r['views']} / 16 | {r.get('points')} | "
              f"{r.get('observations')} | {r.get('rmse_px')} | {r.get('median_rotation_deg')} | "
              f"{'n/a' if fraction is None else round(100 * fraction, 2)} | {r['seconds']} |")
    foveal, colmap = rows
    print(f"views: foveal / pycolmap = {foveal['views']} / {colmap['views']}; time ratio "
          f"{foveal['seconds'] / max(colmap['seconds'], 1e-9):.1f}×")
    for r in rows:
        print(f"{r['pipeline']}: {', '.join(r.get('registered', []))}")
    print(f"foveal stages (s): {foveal['stages_s']}")
    if args.quick:
        return
    summary = {"benchmark": "sfm_dino", "dataset": "Middlebury dinoSparseRing (16 views)",
               "threads": args.threads, "rows": rows}
    print(f"written to {save('sfm_dino', summary)}")


if __name__ == "__main__":
    main()
