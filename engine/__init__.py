"""EmerFlow engine: data, text encoding, backbone, aligner, meta-training, refinement, index.

The engine is pure ML: it never imports ``streamlit`` and knows nothing of the database.
"""

import os as _os

__version__ = "0.1.0"

# PyTorch's (and FAISS's) OpenMP worker threads busy-wait between parallel regions by default.
# On a shared or oversubscribed CPU that makes single-item inference 5-20x slower (see
# results/speed/README.md). Only effective when set before torch is first imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
