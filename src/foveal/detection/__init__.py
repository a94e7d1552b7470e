"""Object detection: box operations, non-maximum suppression, RoI pooling, COCO tooling, detectors.

Conventions: boxes are float tensors ``(N, 4)``; the default format is ``xyxy`` (x1, y1, x2, y2)
in pixels, with ``x2 > x1`` and ``y2 > y1`` for a non-empty box, and area ``(x2 − x1)(y2 − y1)``
(continuous coordinates, no "+1", as torchvision). Functions are pure PyTorch and run on the
device of their inputs; bad input raises :class:`foveal.errors.DetectionError` with one line.
"""
