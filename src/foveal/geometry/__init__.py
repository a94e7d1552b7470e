"""Classical geometric vision: cameras, robust estimation, two-view geometry, structure from motion.

Conventions shared by every module here:

- Arrays in, arrays out: NumPy ``float64``; points are rows, ``(N, 2)`` pixels or ``(N, 3)``
  world points. Homogeneous coordinates only where a function says so.
- A camera maps a world point ``X`` to ``x_cam = R X + t`` (world → camera), then to pixels
  ``x ~ K x_cam``; the projection matrix is ``P = K [R | t]``. The camera centre is
  ``C = −Rᵀ t``. This is OpenCV's and Hartley & Zisserman's convention.
- Rotations as 3×3 matrices or rotation vectors (axis · angle, radians), as ``cv2.Rodrigues``.
- Bad input (wrong shapes, NaN, too few points) and degenerate configurations raise
  :class:`foveal.errors.GeometryError` with a one-line message.

Reference: R. Hartley and A. Zisserman, *Multiple View Geometry in Computer Vision*, 2nd ed.,
Cambridge University Press, 2004 (cited as HZ).
"""
