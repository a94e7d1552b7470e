"""foveal: computer vision and deep learning, readable and verified.

Subpackages by field:

- ``foveal.data``: dataset readers, downloaders, the decoded cache and the in-memory loader.
- ``foveal.models``: classifier architectures.
- ``foveal.training``: the trainer, schedules, checkpoints and run folders.
- ``foveal.report``: plots and the self-contained HTML report.
- ``foveal.cli``: the ``foveal`` command line, a thin layer over the above.
"""

__version__ = "0.1.0"
